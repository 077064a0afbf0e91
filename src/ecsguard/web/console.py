"""The web console: login, sessions, CSRF, language, security headers and the page routes.

Every page needs a session (the login form or a one-time link opens one). Sessions live in
console.db; the cookie is HttpOnly, SameSite=Strict, and Secure under TLS. Every state change
(POST) carries the session's CSRF token, as the `csrf` form field or the `X-CSRF-Token` header.
Responses carry a Content-Security-Policy that allows scripts only from /static: no inline
script runs, so text from logs or AWS cannot become code even if a template slipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecsguard.web.auth import ApiError
from ecsguard.web.i18n import LANGS, negotiate, translator
from ecsguard.web.page import PAGES, Page, PageContext, ordered
from ecsguard.web.throttle import LoginThrottle
from ecsguard.web.users import ROLES, Session, User, UserStore, same_secret

HERE = Path(__file__).parent
SESSION_COOKIE = "ecsguard_session"
LANG_COOKIE = "ecsguard_lang"
#: the login form's double-submit token (there is no session yet to hold one)
LOGIN_COOKIE = "ecsguard_login"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds the headers above to every HTTP response (pure ASGI: streams stay streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass
class Console:
    """What the console's routes share; `app.state.console`."""

    data_dir: Path
    users: UserStore
    secure_cookies: bool = False
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    templates: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.FileSystemLoader([HERE / "templates", HERE / "pages"]),
            autoescape=True,  # every template, whatever its name: log text is untrusted
            undefined=jinja2.StrictUndefined,
        )
    )


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def current_session(request: Request) -> Session | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return console_of(request).users.session(cookie) if cookie else None


def language(request: Request) -> str:
    return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


async def page_context(request: Request) -> PageContext:
    """The dependency of every page route and action: a session, or 401."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        raise ApiError(401, "log in first: POST /login (or open /login in a browser)")
    return PageContext(request, console_of(request), session, language(request))


async def csrf_checked(request: Request) -> PageContext:
    """`page_context` plus the CSRF token, for every state change."""
    ctx = await page_context(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get("csrf") or "") or None
    if not same_secret(given, ctx.session.csrf):
        raise ApiError(403, "missing or wrong CSRF token: reload the page and try again")
    return ctx


#: the parameter type of a page's read-only JSON routes: a session, or 401
Reader = Annotated[PageContext, Depends(page_context)]
#: the parameter type of every action (state change): a session and its CSRF token, or 401 / 403
Action = Annotated[PageContext, Depends(csrf_checked)]


def _safe_next(target: str | None) -> str:
    """Only our own paths: `next` must not send a fresh login to another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _set_cookie(response: Response, console: Console, name: str, value: str, **kw: Any) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
        path="/",
        **kw,
    )


def render(
    request: Request,
    template: str,
    *,
    lang: str,
    status: int = 200,
    words: tuple[dict[str, dict[str, str]], ...] = (),
    **values: Any,
) -> HTMLResponse:
    console = console_of(request)
    query = f"?{request.url.query}" if request.url.query else ""
    context: dict[str, Any] = {
        "t": translator(lang, *words),
        "request_path": request.url.path + query,
        "query_string": query,
        "lang": lang,
        "langs": LANGS,
        "pages": ordered(),
        "user": None,
        "csrf": "",
        "page": None,
    }
    html = console.templates.get_template(template).render({**context, **values})
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


router = APIRouter()


# -- login -----------------------------------------------------------------------------------------


def _before_login(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    """A page shown before any session (login form, one-time link): its forms carry the
    double-submit token, kept in a cookie of its own."""
    import secrets

    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request, template, lang=language(request), status=status, login_csrf=token, **values
    )
    _set_cookie(response, console_of(request), LOGIN_COOKIE, token, max_age=3600)
    return response


def _login_token_ok(request: Request, form: Any) -> bool:
    """The form's double-submit token matches the login cookie."""
    return same_secret(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE) or "\0")


def _login_form(
    request: Request, *, error: str = "", status: int = 200, name: str = ""
) -> Response:
    return _before_login(
        request,
        "login.html",
        status,
        error=error,
        next=_safe_next(request.query_params.get("next")),
        name=name,
    )


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_form(request)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _start_session(request: Request, user: User, target: str) -> Response:
    console = console_of(request)
    cookie, _ = console.users.open_session(user)
    response = RedirectResponse(_safe_next(target), status_code=303)
    _set_cookie(response, console, SESSION_COOKIE, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    name, password = str(form.get("user") or ""), str(form.get("password") or "")
    t = translator(language(request))
    if not _login_token_ok(request, form):
        return _login_form(request, error=t("login_expired"), status=403, name=name)
    keys = (f"user:{name}", f"client:{_client(request)}")
    wait = console.throttle.retry_after(*keys)
    if wait > 0:
        response = _login_form(
            request, error=t("login_throttled", seconds=int(wait) + 1), status=429, name=name
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await run_in_threadpool(console.users.authenticate, name, password)
    if user is None:
        console.throttle.failed(*keys)
        return _login_form(request, error=t("login_failed"), status=401, name=name)
    console.throttle.succeeded(*keys)
    return _start_session(request, user, str(form.get("next") or "/"))


@router.get("/login/once")
async def once_page(request: Request, token: str = "") -> Response:
    """The one-time link shows a button: a GET must not log in (link previews would use it up)."""
    return _before_login(request, "once.html", token=token)


@router.post("/login/once")
async def once(request: Request) -> Response:
    form = await request.form()
    t = translator(language(request))
    if not _login_token_ok(request, form):
        return _login_form(request, error=t("login_expired"), status=403)
    user = await run_in_threadpool(console_of(request).users.redeem, str(form.get("token") or ""))
    if user is None:
        return _login_form(request, error=t("once_invalid"), status=401)
    return _start_session(request, user, "/")


@router.post("/logout")
async def logout(request: Request, ctx: Action) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(ctx.console.users.close_session, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/lang")
async def switch_language(request: Request) -> Response:
    """Set the language cookie. Works before login too (the login form's token then counts)."""
    form = await request.form()
    session = await run_in_threadpool(current_session, request)
    expected = session.csrf if session else request.cookies.get(LOGIN_COOKIE) or "\0"
    if not same_secret(str(form.get("csrf") or ""), expected):
        raise ApiError(403, "missing or wrong CSRF token: reload the page and try again")
    lang = str(form.get("lang") or "")
    if lang not in LANGS:
        raise ApiError(400, f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")
    response = RedirectResponse(_safe_next(str(form.get("next") or "/")), status_code=303)
    _set_cookie(response, console_of(request), LANG_COOKIE, lang, max_age=365 * 86400)
    return response


@router.get("/")
async def home() -> Response:
    return RedirectResponse(f"/{ordered()[0].name}" if ordered() else "/login", status_code=303)


@router.get("/static/pages/{name}.js")
async def page_script(name: str) -> Response:
    page = dict(PAGES).get(name)
    if page is None or not page.script:
        raise ApiError(404, f"no script for page {name!r}")
    return FileResponse(HERE / "pages" / f"{name}.js", media_type="text/javascript")


# -- the pages -------------------------------------------------------------------------------------


def _page_routes(page: Page) -> APIRouter:
    pages = APIRouter()

    async def context(request: Request) -> PageContext:
        ctx = await page_context(request)
        ctx.page = page
        if not ctx.user.may(page.role):
            raise ApiError(403, f"the {ctx.user.role} role may not see this page")
        return ctx

    async def data(ctx: PageContext) -> dict[str, Any]:
        return await run_in_threadpool(page.data, ctx)

    @pages.get(f"/{page.name}.json", name=f"{page.name}.json")
    async def json_twin(request: Request) -> Response:
        ctx = await context(request)
        return JSONResponse(await data(ctx), headers={"Cache-Control": "no-store"})

    @pages.get(f"/{page.name}", name=page.name)
    async def html(request: Request) -> Response:
        session = await run_in_threadpool(current_session, request)
        if session is None:
            query = f"?{request.url.query}" if request.url.query else ""
            target = quote(request.url.path + query, safe="")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        ctx = await context(request)
        return render(
            request,
            f"{page.name}.html",
            lang=ctx.lang,
            words=(page.words,),
            data=await data(ctx),
            user=ctx.user,
            csrf=ctx.session.csrf,
            page=page,
            roles=ROLES,
        )

    if page.router is not None:
        pages.include_router(page.router)
    return pages


def install(app: FastAPI, console: Console) -> None:
    """Add the console to the server's app."""
    import ecsguard.web.pages  # noqa: F401  (registers the pages; they import this module)

    app.state.console = console
    app.include_router(router)
    for page in ordered():
        app.include_router(_page_routes(page))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)
