"""Why a manifest is not a valid WorkerPool, in words: pydantic's errors as (path, message).

Paths are the manifest's own (camelCase, ``spec.env[2].name``); messages are short and name the
bound that was broken, so `shoal up` and the operator can report them as they are.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ManifestError(ValueError):
    """A manifest that is not a valid WorkerPool; ``problems`` holds (path, message) pairs.

    str() is one line naming every bad field, e.g.
    ``invalid WorkerPool: spec.scaling.maxReplicas: must be >= minReplicas; spec.image: required``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid WorkerPool: " + "; ".join(f"{p}: {m}" for p, m in problems))


def describe_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors as (manifest path, short message), one per bad field."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        path = _path(error["loc"])
        if error["type"] == "cross_field":
            for field, message in error["ctx"]["problems"]:
                problems.append((f"{path}.{field}" if path else field, message))
        else:
            problems.append((path or "manifest", _message(error)))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, str) and not part.isprintable():
            part = repr(part)  # a key with a newline must not break the one-line message
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


_TYPE_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    got = repr(error["input"])
    got = got if len(got) <= 40 else got[:37] + "..."
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]} (got {got})"
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {limit:g} (got {got})"
    if kind == "literal_error":
        return f"must be {ctx['expected']} (got {got})"
    if kind == "string_pattern_mismatch":
        return f"{got} does not match {ctx['pattern']}"
    if kind == "string_too_short":
        return "must not be empty" if ctx["min_length"] == 1 else error["msg"]
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} item(s)"
    if kind == "too_long":
        return f"allows at most {ctx['max_length']} items"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")
