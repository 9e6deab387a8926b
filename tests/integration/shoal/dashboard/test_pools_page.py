"""The Pools page (`--kube`) against the real test cluster: WorkerPools' status in the browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from tests.harness.async_waiting import eventually
from tests.harness.dashboard import chromium, serve_dashboard
from tests.harness.k8s import KubeCluster
from tests.integration.shoal_operator.conftest import GROUP, IMAGE, PLURAL, VERSION, crd

pytestmark = [pytest.mark.k8s, pytest.mark.integration]
__all__ = ["crd"]  # the fixture, shared with the operator's tests

STATUS = {
    "replicas": 2, "readyReplicas": 1, "desiredReplicas": 3, "backlog": 1200, "inFlight": 20,
    "oldestJobAgeSeconds": 4.2, "lastScaleTime": "2026-11-29T08:00:00Z",
    "lastScaleReason": "backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3",
    "conditions": [{
        "type": "Ready", "status": "False", "reason": "PodsNotReady", "message": "1/2 ready",
        "lastTransitionTime": "2026-11-29T08:00:00Z", "observedGeneration": 1,
    }],
}  # fmt: skip


async def test_pools_page_shows_status_of_workerpools(
    kube_cluster: KubeCluster,
    crd: None,
    namespace: Callable[..., str],
    redis_url: str,
) -> None:
    ns = namespace()
    custom = client.CustomObjectsApi(kube_cluster.api_client())
    for name in ("emails", "thumbs"):
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool", "metadata": {"name": name},
            "spec": {"image": IMAGE, "queues": [name]},
        })  # fmt: skip
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "emails", {"status": STATUS}
    )
    async with (
        chromium() as browser,
        serve_dashboard(
            redis_url=redis_url,
            kube=True,
            namespaces=(ns,),
            kubeconfig=str(kube_cluster.kubeconfig),
        ) as url,
    ):
        page = await browser.new_page()
        await page.goto(f"{url}/pools")
        table = await page.locator("#pools-table").inner_text()
        html = await page.content()
        # Live: a new status shows without a reload (one LIST per 5 s, pushed over SSE).
        await page.evaluate("window.notReloaded = true")
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "emails", {"status": {"backlog": 4321}}
        )

        async def updated() -> bool:
            return "4321" in await page.locator("#pools-table").inner_text()

        await eventually(updated, timeout=30, description="the live pools table")
        assert await page.evaluate("window.notReloaded === true")
        points = await page.locator("#pools-table polyline.backlog").first.get_attribute("points")
    assert f"{ns}/emails" in table
    assert f"{ns}/thumbs" in table
    assert "1 / 2" in table  # ready / replicas
    assert "backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3" in table
    assert "Ready=False" in table
    assert "2 WorkerPool(s)" in html
    assert points
    assert len(points.split()) >= 2  # the replicas-vs-backlog chart has a history
