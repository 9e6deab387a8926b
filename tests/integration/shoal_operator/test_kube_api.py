"""The operator's API client against a real HTTP server on loopback: retries, errors, apply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from shoal_operator.kube import APPLY, ApiError, KubeApi
from tests.harness.ports import free_port

pytestmark = pytest.mark.integration


class Server:
    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.seen: list[web.Request] = []
        self.bodies: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request)
        self.bodies.append(await request.text())
        status, body, headers = self.replies.pop(0) if self.replies else (200, {}, {})
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, KubeApi]]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = client.Configuration(host=f"http://127.0.0.1:{port}",
                                  api_key={"BearerToken": "s3cret"},
                                  api_key_prefix={"BearerToken": "Bearer"})  # fmt: skip
    api = KubeApi(config, attempts=4, backoff=0.01, max_backoff=0.05)
    yield srv, api
    await api.close()
    await runner.cleanup()


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "code": code, "reason": reason, "message": message}


async def test_transient_errors_are_retried_then_succeed(server: tuple[Server, KubeApi]) -> None:
    srv, api = server
    srv.replies = [(429, status(429, "TooManyRequests", "slow down"), {"Retry-After": "0"}),
                   (503, status(503, "ServiceUnavailable", "etcd"), {}),
                   (200, {"kind": "Deployment", "metadata": {"name": "x"}}, {})]  # fmt: skip
    got = await api.request("GET", "/apis/apps/v1/namespaces/a/deployments/x")
    assert got["metadata"]["name"] == "x"
    assert api.retries == 2
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in srv.seen)


async def test_refusals_are_not_retried_and_name_the_problem(
    server: tuple[Server, KubeApi],
) -> None:
    srv, api = server
    srv.replies = [(422, status(422, "Invalid", "spec.replicas: Invalid value: -1"), {})]
    with pytest.raises(ApiError) as err:
        await api.apply("/apis/apps/v1/namespaces/a/deployments/x", {"spec": {}}, manager="m")
    assert err.value.status == 422
    assert "spec.replicas: Invalid value: -1" in str(err.value)
    assert len(srv.seen) == 1


async def test_apply_sends_server_side_apply_with_the_field_manager(
    server: tuple[Server, KubeApi],
) -> None:
    srv, api = server
    await api.apply("/apis/apps/v1/namespaces/a/deployments/x", {"spec": {"replicas": 2}},
                    manager="shoal-operator-scaler")  # fmt: skip
    request = srv.seen[0]
    assert request.method == "PATCH"
    assert request.headers["Content-Type"] == APPLY
    assert request.query["fieldManager"] == "shoal-operator-scaler"
    assert request.query["force"] == "true"
    assert json.loads(srv.bodies[0]) == {"spec": {"replicas": 2}}


async def test_missing_objects_read_as_none_and_deletes_of_gone_ones_are_fine(
    server: tuple[Server, KubeApi],
) -> None:
    srv, api = server
    srv.replies = [(404, status(404, "NotFound", "gone"), {}),
                   (404, status(404, "NotFound", "gone"), {})]  # fmt: skip
    assert await api.get("/api/v1/namespaces/a/pods/p") is None
    assert await api.delete("/api/v1/namespaces/a/pods/p") is False


async def test_an_unreachable_server_fails_after_the_attempts() -> None:
    config = client.Configuration(host=f"http://127.0.0.1:{free_port()}")
    api = KubeApi(config, attempts=3, backoff=0.01, max_backoff=0.02)
    try:
        with pytest.raises(ApiError) as err:
            await api.get("/api/v1/namespaces")
        assert err.value.status == 0
        assert api.retries == 2
    finally:
        await api.close()


async def test_a_write_whose_reply_is_unused_is_not_parsed_and_still_reports_refusals(
    server: tuple[Server, KubeApi],
) -> None:
    srv, api = server
    whole = {"kind": "WorkerPool", "metadata": {"managedFields": [{"manager": "m"}] * 50}}
    srv.replies = [(200, whole, {}), (200, whole, {}),
                   (409, status(409, "Conflict", "try again"), {})]  # fmt: skip
    path = "/apis/shoal.dev/v1alpha1/namespaces/a/workerpools/p/status"
    assert await api.merge_patch(path, {"status": {"backlog": 1}}, decoded=False) == {}
    assert await api.merge_patch(path, {"status": {"backlog": 2}}) == whole
    with pytest.raises(ApiError) as err:
        await api.merge_patch(path, {"status": {"backlog": 3}}, decoded=False)
    assert err.value.status == 409
    assert "try again" in str(err.value)
    assert [json.loads(b) for b in srv.bodies] == [{"status": {"backlog": n}} for n in (1, 2, 3)]
