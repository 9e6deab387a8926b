"""The Kubernetes API calls the operator makes, on asyncio (aiohttp), with retries and backoff.

Credentials come from the official client's loaders (in-cluster ServiceAccount first, then the
kubeconfig, as kopf does), so token rotation and exec plugins work as usual; the requests
themselves go through aiohttp and return plain dicts: no thread per call and no model
deserialisation, which keeps a thousand pools near idle cost. Objects are written with
server-side apply under a named field manager, status with merge patches on ``/status``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import structlog
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

log = structlog.get_logger("shoal.operator.kube")

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
APPLY = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
MERGE = "application/merge-patch+json"
JSON = "application/json"


class ApiError(Exception):
    """A request the API server refused (or that could not reach it after retries)."""

    def __init__(self, status: int, reason: str, message: str, *, method: str, path: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{method} {path}: {status} {reason}: {message}")


def load_configuration() -> Any:
    """The official client's Configuration: in-cluster when in a pod, else the kubeconfig."""
    configuration = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def _ssl_context(configuration: Any) -> ssl.SSLContext | bool:
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class KubeApi:
    """A small async client: get, apply, merge_patch, create, delete and list."""

    def __init__(
        self,
        configuration: Any,
        *,
        concurrency: int = 16,
        timeout: float = 15.0,
        attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self._configuration = configuration
        self._host = str(configuration.host).rstrip("/")
        self._ssl = _ssl_context(configuration)
        self._concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._session: aiohttp.ClientSession | None = None
        # Requests wait here, not in aiohttp's pool: a pool wait would count against the
        # request's own timeouts, and a burst of reconciles would time out while queued.
        self._slots: asyncio.Semaphore | None = None
        #: requests retried after a transient failure (telemetry reads it)
        self.retries = 0
        #: False while this replica is not the leader: every write is refused (leader.py)
        self.may_write: Callable[[], bool] = lambda: True

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": "shoal-operator"}
        # Both calls run the client's refresh hook; kubernetes >= 36.0.1 keeps the token under
        # BearerToken, older versions under authorization.
        c = self._configuration
        token = c.get_api_key_with_prefix("BearerToken") or c.get_api_key_with_prefix(
            "authorization"
        )
        if token:
            headers["Authorization"] = token
        return headers

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        guarded: bool = True,
        decoded: bool = True,
    ) -> dict[str, Any]:
        """One request, retried on 429/5xx and connection errors with jittered backoff.

        Not ``decoded``, a success answers ``{}``: the object the server sends back is not
        parsed (a status write's reply, unused, is the whole object, managedFields and all).

        Writes (``guarded``) are refused with ``NotLeading`` while ``may_write()`` is false,
        checked before each attempt: a replica that lost its Lease mid-retry stops there.
        """
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            if guarded and method != "GET" and not self.may_write():
                raise NotLeading(method=method, path=path)
            headers = self._headers()
            if data is not None:
                headers["Content-Type"] = content_type
            if self._slots is None:
                self._slots = asyncio.Semaphore(self._concurrency)
            try:
                async with (
                    self._slots,
                    self._open().request(
                        method, self._host + path, params=params, data=data, headers=headers
                    ) as resp,
                ):
                    if resp.status < 300 and not decoded:
                        await resp.read()  # the connection is reused once the body is read
                        return {}
                    text = await resp.text()
                    if resp.status < 300:
                        return json.loads(text) if text else {}
                    error = _error(resp.status, text, method=method, path=path)
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = ApiError(0, type(exc).__name__, str(exc) or "no answer", method=method,
                                 path=path)  # fmt: skip
                retry_after = None
            if (error.status and error.status not in RETRIED_STATUSES) or attempt == self._attempts:
                raise error
            self.retries += 1
            log.debug("retrying", method=method, path=path, status=error.status,
                      reason=error.reason, message=error.message[:200])  # fmt: skip
            wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            await asyncio.sleep(min(wait, self._max_backoff) * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, path: str, *, guarded: bool = True) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", path, guarded=guarded)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def apply(
        self, path: str, body: Mapping[str, Any], *, manager: str, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``body`` as field manager ``manager`` (creates it if missing)."""
        params = {"fieldManager": manager, "force": "true" if force else "false"}
        return await self.request("PATCH", path, params=params, body=body, content_type=APPLY)

    async def merge_patch(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        manager: str | None = None,
        decoded: bool = True,
    ) -> dict[str, Any]:
        params = {"fieldManager": manager} if manager else None
        return await self.request(
            "PATCH", path, params=params, body=body, content_type=MERGE, decoded=decoded
        )

    async def create(
        self, path: str, body: Mapping[str, Any], *, guarded: bool = True
    ) -> dict[str, Any]:
        return await self.request("POST", path, body=body, guarded=guarded)

    async def replace(
        self, path: str, body: Mapping[str, Any], *, guarded: bool = True
    ) -> dict[str, Any]:
        """PUT: with ``metadata.resourceVersion`` set, a 409 when someone wrote it since."""
        return await self.request("PUT", path, body=body, guarded=guarded)

    async def delete(self, path: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self.request("DELETE", path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = (await self.request("GET", path, params=params))["items"]
        return items


class NotLeading(ApiError):
    """A write refused locally: this replica does not hold the leader Lease."""

    def __init__(self, *, method: str, path: str) -> None:
        super().__init__(0, "NotLeading", "this replica is not the leader", method=method,
                         path=path)  # fmt: skip


def _error(status: int, text: str, *, method: str, path: str) -> ApiError:
    try:
        payload = json.loads(text)
        reason, message = str(payload.get("reason", "")), str(payload.get("message", text))
    except (ValueError, AttributeError):
        reason, message = "", text
    return ApiError(status, reason or "Error", " ".join(message.split())[:500], method=method,
                    path=path)  # fmt: skip


# -- paths ------------------------------------------------------------------------------------
def deployment_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    return f"{base}/{name}" if name else base


def pdb_path(namespace: str, name: str) -> str:
    return f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"


def workerpool_path(namespace: str, name: str) -> str:
    return f"/apis/shoal.dev/v1alpha1/namespaces/{namespace}/workerpools/{name}"


def workerpool_status_path(namespace: str, name: str) -> str:
    return f"/apis/shoal.dev/v1alpha1/namespaces/{namespace}/workerpools/{name}/status"


def pods_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base


def events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/events"


def secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"
