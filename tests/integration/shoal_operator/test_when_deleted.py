"""Deleting a WorkerPool: the garbage collector removes its children; the operator lets it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.shoal_operator.conftest import Env

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]


def test_deleting_the_pool_garbage_collects_its_children(
    env: Env, redis_url: str, wait: Wait, gc_watches_workerpools: None
) -> None:
    env.start_operator(redis_url)
    env.create_pool("gone", scaling={"mode": "Manual"}, replicas=2)
    wait(lambda: env.deployment("gone"), 5, "Deployment")
    wait(lambda: len(env.pods("gone")) == 2, 20, "2 pods")
    env.custom.delete_namespaced_custom_object("shoal.dev", "v1alpha1", env.ns, "workerpools",
                                               "gone")  # fmt: skip
    wait(lambda: env.deployment("gone") is None, 20, "Deployment collected")

    def pdb_gone() -> bool:
        try:
            env.policy.read_namespaced_pod_disruption_budget("gone", env.ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait(pdb_gone, 20, "PDB collected")
    wait(lambda: not env.pods("gone"), 30, "pods gone")
    # The operator did not bring anything back for the deleted pool.
    assert env.deployment("gone") is None
