"""The HTTP side of `ecsguard serve`: receivers (`/ingest/...`), the query, tail and stats API.

`app.create_app(settings, service)` builds the FastAPI app around one LogService; `app.run`
serves it with uvicorn. Routes live in small modules (ingest, api); auth holds the token check.
"""
