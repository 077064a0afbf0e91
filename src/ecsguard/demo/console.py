"""The demo's web console step: a `demo` admin, a one-time login link, and a first look at the
overview through the same login a person uses."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import httpx

from ecsguard.core.errors import UserError
from ecsguard.web.users import UserStore

DEMO_USER = "demo"


def login_link(data_dir: Path, url: str) -> str:
    """A one-time login link for the `demo` admin (made on first use with a password nobody is
    shown: the link is the way in)."""
    store = UserStore(data_dir)
    try:
        if store.get(DEMO_USER) is None:
            store.add(DEMO_USER, secrets.token_urlsafe(24), "admin")
        return f"{url}/login/once?token={store.one_time_login(DEMO_USER)}"
    finally:
        store.close()


def overview(link: str) -> dict[str, Any]:
    """Redeem `link` as a browser would (the page, then its button) and read the overview's
    JSON twin."""
    base = link.split("/login/once", 1)[0]
    with httpx.Client(base_url=base, timeout=60) as client:
        page = client.get(link)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        token = link.rpartition("token=")[2]
        if found is None:
            raise UserError(f"the console did not offer the one-time login ({page.status_code})")
        reply = client.post("/login/once", data={"csrf": found.group(1), "token": token})
        if reply.status_code != 303:
            raise UserError(f"the one-time login failed ({reply.status_code})")
        answer = client.get("/overview.json")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data
