"""Who may write: pure checks for the dashboard's write actions (replay, purge).

Writes are off unless the dashboard runs with ``--allow-writes``; each write then needs the
token, either in the ``X-Shoal-Token`` header (scripts: browsers cannot send a custom header
cross-site without a CORS preflight, which the dashboard never grants) or in the form's
``token`` field. A form write also needs the CSRF token (double submit: the cookie set with
the page must equal the form's hidden field) and, when the browser sends one, an ``Origin``
naming this host.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

TOKEN_HEADER = "X-Shoal-Token"
CSRF_COOKIE = "shoal_csrf"
CSRF_FIELD = "csrf"
TOKEN_FIELD = "token"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """What a write request carries, as far as authorisation goes."""

    header_token: str | None = None
    form_token: str | None = None
    csrf_cookie: str | None = None
    csrf_form: str | None = None
    origin: str | None = None
    host: str | None = None


def refusal(request: WriteRequest, *, allow_writes: bool, token: str | None) -> str | None:
    """Why ``request`` may not write (a one-line reason), or None when it may."""
    if not allow_writes or not token:
        return "writes are disabled: start the dashboard with --allow-writes and a token"
    if request.header_token is not None:
        return None if _same(request.header_token, token) else "wrong token"
    if not _same(request.csrf_cookie, request.csrf_form):
        return "missing or wrong CSRF token: reload the page and try again"
    # "null" (sandboxed frames, some redirects) has no host, so it is refused too.
    if request.origin and urlsplit(request.origin).netloc != (request.host or ""):
        return f"cross-origin write refused (Origin {request.origin})"
    if not request.form_token:
        return "a token is required for writes"
    if not _same(request.form_token, token):
        return "wrong token"
    return None
