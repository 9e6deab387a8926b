"""Fuzzing the job codec: any hash a job can be found with decodes to a record or raises
ValueError (the documented error: what `Queue.get_job` callers and the dead-letter listing
may catch), never anything else; payloads and records round-trip."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.unit.core.fuzz_settings import FUZZ
from worker_runtime.core.codec import (
    AttemptRecord,
    JobRecord,
    JobState,
    decode_job,
    dumps,
    encode_payload,
)

FIELDS = ["data", "ts", "att", "stl", "state", "due", "st", "fin", "prog", "res", "err", "tb",
          "hist", "lk", "replays", "pri", "grp", "par", "pend", "ocf"]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# Garbage a field may hold: any text, JSON of any shape, numbers in odd spellings, deep nests.
field_values = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.sampled_from(["", "-1", "1.5", "1e3", "0x10", " 7", "NaN", "inf", "9" * 5000]),
    st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n + "]" * n),
    st.sampled_from([s.value for s in JobState]),
)
hashes = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), field_values, max_size=8)


@FUZZ
@given(fields=hashes)
# Found by this test (each raised TypeError / RecursionError before the fix):
@example(fields={"hist": "null"})
@example(fields={"hist": "5"})
@example(fields={"prog": "[" * 3000 + "]" * 3000})
def test_decode_of_any_hash_gives_a_record_or_value_error(fields: dict[str, str]) -> None:
    try:
        record = decode_job("j", "q", fields)
    except ValueError:
        return
    assert record.id == "j"


@FUZZ
@given(payload=json_values)
def test_payloads_round_trip_through_the_hash(payload: Any) -> None:
    record = decode_job("j", "q", {"data": encode_payload(payload)})
    assert record.data == payload


attempts = st.builds(
    AttemptRecord,
    attempt=st.none() | st.integers(min_value=1, max_value=1000),
    error=st.text(),
    error_type=st.none() | st.text(),
    started_at=st.none() | st.integers(min_value=0, max_value=2**53),
    stalled=st.booleans(),
)


@FUZZ
@given(
    state=st.sampled_from(list(JobState)),
    att=st.integers(min_value=0, max_value=10**6),
    stl=st.integers(min_value=0, max_value=10**6),
    history=st.lists(attempts, max_size=5),
    error=st.text(min_size=1),
    progress=json_values,
)
def test_stored_fields_round_trip(
    state: JobState, att: int, stl: int, history: list[AttemptRecord], error: str, progress: Any
) -> None:
    fields = {
        "data": "null", "state": state.value, "att": str(att), "stl": str(stl), "err": error,
        "hist": dumps([h.model_dump(exclude_none=True) for h in history]), "prog": dumps(progress),
    }  # fmt: skip
    record = decode_job("j", "q", fields)
    assert (record.state, record.attempts, record.stalls) == (state, att, stl)
    assert record.error == error
    assert record.history == history
    assert record.progress == progress
    assert JobRecord.model_validate(record.model_dump()) == record
