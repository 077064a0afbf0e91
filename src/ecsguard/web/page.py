"""What a console page is, the registry the page modules add themselves to, and the context a
page's functions receive.

A page is one module in web/pages/ with a template of the same name (`logs.py`, `logs.html`)
and optionally a script (`logs.js`, served as /static/pages/logs.js). The module builds a `Page`
and calls `PAGES.add`. The console then serves:

- `GET /<name>`: the template, rendered with the page's data (HTML, for people);
- `GET /<name>.json`: the same data as JSON (the page's JSON twin, for scripts and tests);
- the page's own `router` (actions such as mute or silence), which guards each state change
  with `require(ctx, role)`.

Templates extend `base.html` and receive `data`, `t` (the page's words in the session's
language), `user`, `csrf`, `lang`, `page` and `pages`. Data reaches scripts only as JSON
(`data|tojson` in a `<script type="application/json">` block, or a fetch of the JSON twin);
scripts write text with textContent, never innerHTML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from ecsguard.core.registry import Registry
from ecsguard.web.auth import ApiError
from ecsguard.web.i18n import translator
from ecsguard.web.users import Session, User

if TYPE_CHECKING:
    from ecsguard.logs.query.timerange import TimeRange
    from ecsguard.web.console import Console

Words = dict[str, dict[str, str]]  # {"en": {key: text}, "ja": {key: text}}


@dataclass(frozen=True)
class Page:
    name: str
    #: position in the navigation bar, smallest first
    order: int
    #: the page's data from the request (query parameters in ctx.params); JSON-serialisable
    data: Callable[[PageContext], dict[str, Any]]
    #: the page's own words; the nav title is the key "title"
    words: Words
    #: the role needed to see the page
    role: str = "viewer"
    #: actions (POST routes); each calls `ctx.require(role)`; CSRF is checked for them
    router: APIRouter | None = None
    #: the page has `<name>.js`
    script: bool = False


PAGES: Registry[Page] = Registry("console page")


def ordered() -> list[Page]:
    return sorted((page for _, page in PAGES), key=lambda page: page.order)


@dataclass
class PageContext:
    """One request to a page: who asks, in which language, with which parameters."""

    request: Request
    console: Console
    session: Session
    lang: str
    page: Page | None = None

    @property
    def user(self) -> User:
        return self.session.user

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.query_params)

    @property
    def app_state(self) -> Any:
        """The server's state: service (LogService), detection, settings, hub."""
        return self.request.app.state

    def t(self, key: str, **values: object) -> str:
        return translator(self.lang, *([self.page.words] if self.page else []))(key, **values)

    def time_window(self, default_since: str) -> TimeRange:
        """The range in the query string (`since=`, or `start=` / `end=`), else the last
        `default_since`; 400 with the parser's message when it is not a range."""
        from ecsguard.core.errors import UserError
        from ecsguard.logs.query.timerange import resolve

        params = self.params
        start, end = params.get("start") or None, params.get("end") or None
        since = params.get("since") or (None if start or end else default_since)
        try:
            return resolve(since, start, end)
        except UserError as err:
            raise ApiError(400, str(err)) from None

    def require(self, role: str) -> None:
        """Raise 403 unless the user holds `role` (or a stronger one)."""
        if not self.user.may(role):
            raise ApiError(403, f"the {self.user.role} role may not do this; it needs {role}")
