"""Secrets of channels: taken from the environment, kept out of logs and error messages.

Configuration names environment variables (`password_env: SMTP_PASSWORD`, or `${SLACK_HOOK}` inside
a URL), never the secret itself. Whatever a channel knows to be secret (expanded variables, URL
passwords, tokens in URL paths and queries) is registered here; `scrub` replaces it in any text,
and a logging filter does the same for the libraries that log request URLs at debug level
(apprise, urllib3).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
#: loggers of libraries that write request URLs (with their tokens) at debug level
_CHATTY_LOGGERS = ("apprise", "urllib3.connectionpool", "requests")

_lock = threading.Lock()
_known: set[str] = set()
_filter_installed = False


class MissingVariable(Exception):
    """A configured environment variable is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(f"environment variable {name} is not set")
        self.name = name


def expand(template: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """`${NAME}` replaced from `env`: the text and the values used (all secret)."""
    used: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in env or env[name] == "":
            raise MissingVariable(name)
        used.append(env[name])
        return env[name]

    return _VARIABLE.sub(value, template), used


def variables(template: str) -> list[str]:
    """The names of the `${NAME}` variables in a text."""
    return _VARIABLE.findall(template)


def url_secrets(url: str) -> list[str]:
    """Parts of a URL that may be credentials: the password, query values, token-like path parts.

    A path part counts as a token when it has a digit and 8 characters, or 16 characters (webhook
    ids and signatures); plain words such as `services` or `webhooks` do not. A path holding a
    token counts whole, as HTTP libraries log request paths.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    found = [password] if password else []
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 4]
    # apprise schemes (slack://T/B/X) carry tokens in the "host" too
    pieces = [parts.netloc.rsplit("@", 1)[-1].split(":")[0], *parts.path.split("/")]
    tokens = [p for p in pieces if len(p) >= 16 or (len(p) >= 8 and any(c.isdigit() for c in p))]
    if any(t in parts.path for t in tokens):
        tokens.append(parts.path)
    return found + tokens


def safe_url(url: str) -> str:
    """A URL fit for logs: scheme and host only, and only when the host is a host name."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme:
        # `${SLACK_WEBHOOK_URL}`: the variable's name says where to look and holds no secret
        return url if _VARIABLE.fullmatch(url.strip()) else MASK
    if parts.scheme in ("http", "https", "json", "jsons") and "${" not in host:
        return f"{parts.scheme}://{host}{port}/{MASK}"
    return f"{parts.scheme}://{MASK}"


def register(values: Iterable[str]) -> None:
    """Remember secrets so that `scrub` and the logging filter hide them."""
    global _filter_installed
    with _lock:
        _known.update(v for v in values if v and len(v) >= 4)
        if not _filter_installed:
            for name in _CHATTY_LOGGERS:
                logging.getLogger(name).addFilter(_ScrubFilter())
            _filter_installed = True


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known secret (and `extra` ones) replaced by ***."""
    with _lock:
        secrets = sorted({*_known, *(e for e in extra if e and len(e) >= 4)}, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _ScrubFilter(logging.Filter):
    """Rewrites a record's message without the secrets; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the library's problem, not ours
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
