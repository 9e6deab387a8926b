"""A WorkerPool manifest as `shoal up` needs it: valid, with an app to run (pure).

``spec.app`` is optional in a cluster (the image's entry point runs) but a local run has no
image, so it is required here; it is reported together with every other bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from worker_runtime.core.spec import ManifestError, WorkerPool, load_workerpool
from worker_runtime.supervisor.process_env import manifest_env
from worker_runtime.supervisor.redis_target import RedisTarget

APP_REQUIRED = "required by shoal up: the module:attribute `shoal worker` runs (e.g. app:worker)"


def load_local_pool(text: str) -> WorkerPool:
    """Parse and validate; raise ManifestError naming every bad field, spec.app included."""
    try:
        pool = load_workerpool(text)
    except ManifestError as exc:
        problems = list(exc.problems)
        if _lacks_app(text) and not any(p == "spec.app" for p, _ in problems):
            problems.append(("spec.app", APP_REQUIRED))
        raise ManifestError(problems) from None
    if pool.spec.app is None:
        raise ManifestError([("spec.app", APP_REQUIRED)])
    return pool


def _lacks_app(text: str) -> bool:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    spec = data.get("spec") if isinstance(data, dict) else None
    return isinstance(spec, dict) and spec.get("app") is None


def local_warnings(pool: WorkerPool, target: RedisTarget, env: Mapping[str, str]) -> list[str]:
    """What the manifest asks that a local run cannot do, one line each."""
    _, env_warnings = manifest_env(pool, pod="up", local=env)
    warnings = [*target.warnings, *env_warnings]
    if pool.spec.resources is not None:
        warnings.append("spec.resources: not enforced locally")
    return warnings
