"""Resolve ``module:attribute`` (what `shoal worker APP` runs) into a configured Worker."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worker_runtime.consuming.processor import Processor
from worker_runtime.consuming.worker import Worker


class AppLoadError(ValueError):
    """APP does not name a Worker or processors."""


def load_attribute(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"APP must look like 'package.module:attribute', got {spec!r}")
    # Like `python -m`, let the current directory's modules be found.
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        value = module
        for part in attr.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    return value


def build_worker(target: Any, **worker_kwargs: Any) -> Worker:
    """A Worker as is, or a new Worker for a Processor (class or instance) or a list of them."""
    if isinstance(target, Worker):
        updates = {k: v for k, v in worker_kwargs.items() if v is not None}
        settings_updates: dict[str, Any] = {
            k: updates[k] for k in ("redis_url", "concurrency") if k in updates
        }
        target.settings = target.settings.model_copy(update=settings_updates)
        return target
    items: Iterable[Any] = target if isinstance(target, list | tuple) else [target]
    worker = Worker(**worker_kwargs)
    for item in items:
        if isinstance(item, type) and issubclass(item, Processor):
            item = item()
        if not isinstance(item, Processor):
            raise AppLoadError(
                f"APP must be a Worker, a Processor or a list of Processors, not {item!r}"
            )
        worker.register(item)
    return worker
