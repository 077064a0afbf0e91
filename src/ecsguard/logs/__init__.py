"""The log pipeline: receivers -> Arrow batches -> WAL -> Parquet store -> DuckDB queries."""
