"""Who may write: the dashboard's pure authorisation rule."""

from __future__ import annotations

from shoal.dashboard.security import WriteRequest, refusal

TOKEN = "0123456789abcdef-token"
HOST = "127.0.0.1:8700"


def form(**fields: str | None) -> WriteRequest:
    base: dict[str, str | None] = {
        "form_token": TOKEN, "csrf_cookie": "c1", "csrf_form": "c1",
        "origin": f"http://{HOST}", "host": HOST,
    }  # fmt: skip
    base.update(fields)
    return WriteRequest(**base)


def test_a_confirmed_same_origin_form_with_token_and_csrf_may_write() -> None:
    assert refusal(form(), allow_writes=True, token=TOKEN) is None
    assert refusal(form(origin=None), allow_writes=True, token=TOKEN) is None  # old browsers


def test_writes_off_refuse_everything() -> None:
    assert "disabled" in str(refusal(form(), allow_writes=False, token=TOKEN))
    assert "disabled" in str(refusal(form(), allow_writes=True, token=None))
    header = WriteRequest(header_token=TOKEN)
    assert "disabled" in str(refusal(header, allow_writes=False, token=TOKEN))


def test_form_writes_need_the_token() -> None:
    assert refusal(form(form_token=None), allow_writes=True, token=TOKEN) == (
        "a token is required for writes"
    )
    assert refusal(form(form_token="guess"), allow_writes=True, token=TOKEN) == "wrong token"


def test_form_writes_need_matching_csrf_tokens() -> None:
    for fields in ({"csrf_cookie": None}, {"csrf_form": None}, {"csrf_form": "c2"}):
        assert "CSRF" in str(refusal(form(**fields), allow_writes=True, token=TOKEN))


def test_cross_origin_forms_are_refused() -> None:
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        assert "cross-origin" in str(refusal(form(origin=origin), allow_writes=True, token=TOKEN))


def test_header_token_needs_no_csrf_but_must_be_right() -> None:
    assert refusal(WriteRequest(header_token=TOKEN), allow_writes=True, token=TOKEN) is None
    assert refusal(WriteRequest(header_token="x"), allow_writes=True, token=TOKEN) == "wrong token"
