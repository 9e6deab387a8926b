"""/healthz from its own thread: 500 naming the stall while the event loop is blocked."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from shoal_operator.handlers import Backoffs
from shoal_operator.health import Heartbeat, serve
from tests.harness.ports import free_port


def get(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_heartbeat_fails_after_the_stall_limit() -> None:
    now = [0.0]
    beat = Heartbeat(stall_seconds=60, clock=lambda: now[0])
    now[0] = 59.0
    assert beat.check() == (True, {"scaling_loop": 59.0, "leader": True})
    now[0] = 61.0
    ok, body = beat.check()
    assert not ok
    assert body["error"] == "the scaling loop has not finished a pass for 61 s"


def test_a_blocked_event_loop_gets_a_500_not_a_hang() -> None:
    beat = Heartbeat(stall_seconds=0.5)
    port = free_port()
    server = serve(beat.check, host="127.0.0.1", port=port)

    async def loop_that_blocks() -> tuple[int, dict[str, object]]:
        beat.beat()
        assert get(port)[0] == 200
        with ThreadPoolExecutor(1) as pool:
            probe = asyncio.get_running_loop().run_in_executor(pool, _probe_after, port, 1.0)
            time.sleep(2.5)  # noqa: ASYNC251  (the point: a blocking call stalls the loop)
            return await probe

    try:
        status, body = asyncio.run(loop_that_blocks())
    finally:
        server.shutdown()
    assert status == 500
    assert "has not finished a pass" in str(body["error"])


def _probe_after(port: int, delay: float) -> tuple[int, dict[str, object]]:
    time.sleep(delay)
    began = time.monotonic()
    answer = get(port)
    assert time.monotonic() - began < 1.0  # answered while the loop is still blocked
    return answer


def test_kopf_never_gives_up_on_the_api_server() -> None:
    first = list(zip(range(8), Backoffs(), strict=False))
    assert [b for _, b in first] == [1, 2, 5, 10, 30, 30, 30, 30]
    assert list(zip(range(2), Backoffs(), strict=False)) == first[:2]  # re-iterable


def test_the_lean_diff_base_is_kopfs_essence() -> None:
    import kopf

    from shoal_operator.handlers import LeanDiffBaseStorage

    raw = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {
            "name": "emails",
            "namespace": "team",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "81",
            "labels": {"team": "mail"},
            "annotations": {
                "shoal.dev/last-handled-configuration": '{"spec":{}}\n',
                "note": "kept",
                "kopf.zalando.org/other": "x",
            },
            "finalizers": ["shoal.dev/finalizer"],
            "managedFields": [{"manager": "shoal-operator", "fieldsV1": {"f:status": {}}}],
            "ownerReferences": [{"kind": "App", "name": "a", "uid": "u-0"}],
        },
        "spec": {"image": "emails:1", "queues": ["emails"], "scaling": {"maxReplicas": 4}},
        "status": {"backlog": 5, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    lean = LeanDiffBaseStorage(prefix="shoal.dev", key="last-handled-configuration")
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix="shoal.dev", key="last-handled-configuration")
    body = kopf.Body(raw)  # type: ignore[arg-type]
    spec = {("spec",)}  # what kopf passes for on.update(field="spec")
    essence = lean.build(body=body, extra_fields=spec)
    assert essence == kopfs.build(body=body, extra_fields=spec)
    assert lean.build(body=body, extra_fields=set()) == kopfs.build(body=body, extra_fields=set())
    assert "status" not in essence
    assert essence["spec"] is not raw["spec"]  # a copy: later changes must not reach it
    wanted = {"status.backlog"}
    assert lean.build(body=body, extra_fields=wanted) == kopfs.build(body=body, extra_fields=wanted)
