import json

import pytest
from pydantic import BaseModel

from worker_runtime.core.codec import JobState, decode_job, dumps, encode_payload, printable


class P(BaseModel):
    n: int


def test_payload_encoding_is_compact_json() -> None:
    assert encode_payload({"a": [1, 2]}) == '{"a":[1,2]}'
    assert json.loads(encode_payload(P(n=3))) == {"n": 3}
    assert dumps({"m": P(n=1)}) == '{"m":{"n":1}}'


def test_unserialisable_values_raise_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"x": object()})


def test_decode_full_record() -> None:
    hist = json.dumps([{"attempt": 1, "error": "boom", "finished_at": 5}])
    rec = decode_job(
        "j1",
        "q",
        {"data": '{"n":1}', "state": "dead", "att": "3", "stl": "1", "err": "boom",
         "tb": "Traceback", "hist": hist, "ts": "1", "fin": "9", "prog": "0.5", "res": ""},
    )  # fmt: skip
    assert rec.state is JobState.DEAD
    assert rec.data == {"n": 1}
    assert (rec.attempts, rec.stalls, rec.progress, rec.result) == (3, 1, 0.5, None)
    assert rec.history[0].error == "boom"
    assert rec.finished_at == 9


def test_decode_minimal_record_has_defaults() -> None:
    rec = decode_job("j", "q", {"data": "null"})
    assert rec.state is JobState.WAITING
    assert rec.attempts == 0
    assert rec.history == []


def test_decode_a_record_holding_garbage() -> None:
    """A hand-edited or corrupted hash (as fetch.lua dead-letters it) is still readable."""
    rec = decode_job(
        "j1",
        "q",
        {"data": "{not json", "state": "???", "att": "x", "stl": "1.5", "hist": '{"a": 1}',
         "err": "malformed job: field att is not a count"},
    )  # fmt: skip
    assert rec.data == "{not json"
    assert rec.state == JobState.WAITING
    assert (rec.attempts, rec.stalls, rec.history) == (0, 0, [])
    entries = json.dumps([{"error": "ok"}, {"no": "error"}, 5])
    assert [h.error for h in decode_job("j", "q", {"hist": entries}).history] == ["ok"]


def test_printable_escapes_lone_surrogates_only() -> None:
    assert printable("plain ✓") == "plain ✓"
    assert printable("bad \ud800 byte") == "bad \\ud800 byte"
    printable("bad \udcff").encode()  # encodes now
