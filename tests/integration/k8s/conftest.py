"""Fixtures for tests against a real Kubernetes control plane (kwok nodes).

The binaries are built once per machine into a per-user cache by scripts/k8s-binaries.sh;
set SHOAL_K8S_NO_BUILD=1 to fail fast instead of building when they are missing.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so this directory runs under --strict-markers on its own.
    config.addinivalue_line(
        "markers", "k8s: needs the Kubernetes test cluster (tests/harness/k8s.py)"
    )
