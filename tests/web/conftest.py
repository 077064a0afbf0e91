"""A real `ecsguard serve` app on a free 127.0.0.1 port (uvicorn in a thread) per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from socket import IPPROTO_TCP, TCP_NODELAY
from typing import Any

import httpx
import pytest

from ecsguard.detect.reloader import RuleReloader
from ecsguard.detect.worker import DetectionWorker
from ecsguard.logs.service import LogService
from ecsguard.notify.dispatcher import Dispatcher
from ecsguard.web.app import ServerSettings, bind, create_app, make_server

TOKEN = "t0ken-for-tests"
SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"
TESTDATA = SAMPLES.parents[1]


@dataclass
class Running:
    url: str
    service: LogService
    client: httpx.Client  # carries the token

    def query(self, sql: str) -> list[list[object]]:
        reply = self.client.get("/api/query", params={"sql": sql})
        assert reply.status_code == 200, reply.text
        rows: list[list[object]] = reply.json()["rows"]
        return rows


@contextmanager
def running(
    data_dir: Path,
    service: LogService | None = None,
    detection: DetectionWorker | None = None,
    dispatcher: Dispatcher | None = None,
    reloader: RuleReloader | None = None,
    **settings: object,
) -> Iterator[Running]:
    """The app of `ecsguard serve` on a free loopback port in a thread; `service` (default: one
    on `data_dir`), `detection`, `dispatcher` and `reloader` are passed to create_app as serve
    does."""
    config = ServerSettings(**{"host": "127.0.0.1", "port": 0, "forward_port": 0, **settings})  # type: ignore[arg-type]
    service = service or LogService(data_dir, flush_seconds=0.2)
    app = create_app(config, service, detection=detection, dispatcher=dispatcher, reloader=reloader)
    server = make_server(app, config)
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.005)
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    try:
        # TCP_NODELAY: headers and body go in two writes; without it each request with a body
        # waits ~40 ms for a delayed ACK
        transport = httpx.HTTPTransport(socket_options=[(IPPROTO_TCP, TCP_NODELAY, 1)])
        with httpx.Client(base_url=url, headers=headers, timeout=10, transport=transport) as client:
            yield Running(url, service, client)
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "server did not shut down"


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., AbstractContextManager[Running]]:
    """`with serve(**settings) as srv:` a server on its own data directory."""
    count = iter(range(1000))

    def start(**settings: object) -> AbstractContextManager[Running]:
        return running(tmp_path / f"data{next(count)}", **settings)

    return start


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server per module (starting one costs ~0.2 s) that requires TOKEN and takes bodies up
    to 64 KiB; tests share its store, so each looks only at records it made itself."""
    with running(tmp_path_factory.mktemp("srv"), token=TOKEN, max_body=64 * 1024) as server:
        yield server


# -- the console -------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"
ROLE_USERS = {"viewer": "vera", "operator": "otto", "admin": "ada"}


def add_console_users(data_dir: Path) -> None:
    """One user per role (ROLE_USERS), all with PASSWORD."""
    from ecsguard.web.users import UserStore

    store = UserStore(data_dir)
    try:
        for role, name in ROLE_USERS.items():
            store.add(name, PASSWORD, role)
    finally:
        store.close()


def login_form_token(client: httpx.Client) -> str:
    import re

    page = client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def csrf_of(client: httpx.Client, path: str = "/overview") -> str:
    """The session's CSRF token, as a page carries it in <meta name="csrf-token">."""
    import re

    page = client.get(path)
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert page.status_code == 200 and found and found.group(1), page.text[:500]
    return found.group(1)


@dataclass
class Console:
    """A logged-in console client: `client` carries the session cookie, `csrf` its token."""

    client: httpx.Client
    csrf: str

    def twin(self, page: str, **params: str) -> dict[str, Any]:
        """The page's JSON twin (`/<page>.json`), which must answer 200."""
        reply = self.client.get(f"/{page}.json", params=params)
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]


def log_in(url: str, role: str) -> Console:
    """A client logged in through the login form as the ROLE_USERS user of `role`."""
    client = httpx.Client(base_url=url, timeout=30)
    token = login_form_token(client)
    reply = client.post(
        "/login", data={"user": ROLE_USERS[role], "password": PASSWORD, "csrf": token}
    )
    assert reply.status_code == 303, reply.text
    return Console(client, csrf_of(client))


@pytest.fixture(scope="module")
def console_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A tokenless loopback server (the console's default) with one user per role."""
    data_dir = tmp_path_factory.mktemp("console")
    add_console_users(data_dir)
    with running(data_dir) as server:
        yield server


@pytest.fixture
def as_role(console_srv: Running) -> Iterator[Callable[[str], Console]]:
    """`as_role("operator")`: a Console logged in with that role on `console_srv`."""
    opened: list[Console] = []

    def open_as(role: str) -> Console:
        opened.append(log_in(console_srv.url, role))
        return opened[-1]

    yield open_as
    for console in opened:
        console.client.close()
