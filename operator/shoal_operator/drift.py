"""Has a child drifted from what the operator applies? (pure)

The API server adds defaults (``protocol``, ``terminationMessagePath``, ...) and other managers may
add fields of their own; neither is drift. Drift is a field the operator sets that is missing or
different, which is what ``drifted_paths`` reports. A false alarm only costs one no-op apply.
"""

from __future__ import annotations

from typing import Any

from worker_runtime.core.spec import parse_quantity


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    # "0.5" comes back as "500m": the same quantity, written the server's way.
    if isinstance(want, str | int) and isinstance(have, str | int):
        try:
            return parse_quantity(want) == parse_quantity(have)
        except ValueError:
            return False
    return False


def _named(items: list[Any]) -> dict[str, Any] | None:
    """Index a list of objects by "name" when every item has a distinct one (env, containers)."""
    if not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = {i["name"]: i for i in items}
    return names if len(names) == len(items) else None


def drifted_paths(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths under ``want`` whose value ``have`` lacks or contradicts."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in want.items():
            sub = f"{path}.{key}" if path else key
            if key not in have:
                if value not in (None, {}, []):
                    out.append(sub)
                continue
            out.extend(drifted_paths(value, have[key], sub))
        return out
    if isinstance(want, list):
        if not isinstance(have, list):
            return [path]
        wanted, present = _named(want), _named(have)
        if wanted is not None and present is not None:
            out = []
            for name, item in wanted.items():
                if name not in present:
                    out.append(f"{path}[{name}]")
                else:
                    out.extend(drifted_paths(item, present[name], f"{path}[{name}]"))
            return out
        if len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out.extend(drifted_paths(w, h, f"{path}[{i}]"))
        return out
    return [] if _same_scalar(want, have) else [path]


def deployment_drift(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Drift of the fields the reconciler owns: labels, owner, selector and the pod template."""
    want = {
        "metadata": {
            "labels": desired["metadata"]["labels"],
            "ownerReferences": desired["metadata"]["ownerReferences"],
        },
        "spec": {k: v for k, v in desired["spec"].items() if k != "replicas"},
    }
    return drifted_paths(want, actual)


def pdb_drift(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    want = {"metadata": {"labels": desired["metadata"]["labels"]}, "spec": desired["spec"]}
    return drifted_paths(want, actual)
