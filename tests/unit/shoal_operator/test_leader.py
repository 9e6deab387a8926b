"""Lease election logic with a fake clock and an in-memory Lease store (the real API server
runs it in tests/integration/shoal_operator/test_leader_election.py)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from kubernetes import client as k8s_client

from shoal_operator.kube import ApiError, KubeApi, NotLeading
from shoal_operator.leader import LeaseElector, Timing, may_take

TIMING = Timing(lease_seconds=10, renew_seconds=7, retry_seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class LeaseStore:
    """get/create/replace of one Lease with resourceVersion checks, like the API server."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def _check(self, method: str, path: str) -> None:
        if self.down:
            raise ApiError(0, "ClientConnectorError", "refused", method=method, path=path)

    async def get(self, path: str, *, guarded: bool = True) -> dict[str, Any] | None:
        self._check("GET", path)
        return copy.deepcopy(self.lease)

    async def create(self, path: str, body: dict[str, Any], *, guarded: bool = True) -> Any:
        self._check("POST", path)
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", "", method="POST", path=path)
        return self._store(body)

    async def replace(self, path: str, body: dict[str, Any], *, guarded: bool = True) -> Any:
        self._check("PUT", path)
        if body["metadata"].get("resourceVersion") != str(self.version):
            raise ApiError(409, "Conflict", "", method="PUT", path=path)
        return self._store(body)

    async def close(self) -> None:
        return None

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


def elector(store: LeaseStore, clock: Clock, identity: str) -> LeaseElector:
    return LeaseElector(store, namespace="ns", name="shoal-operator", identity=identity,  # type: ignore[arg-type]
                        timing=TIMING, clock=clock)  # fmt: skip


def test_may_take_only_a_free_own_or_silent_lease() -> None:
    assert may_take(holder=None, me="a", observed_at=0, now=0, lease_seconds=10)
    assert may_take(holder="a", me="a", observed_at=0, now=0, lease_seconds=10)
    assert not may_take(holder="b", me="a", observed_at=0, now=9.9, lease_seconds=10)
    assert may_take(holder="b", me="a", observed_at=0, now=10, lease_seconds=10)


def test_timing_must_leave_the_old_leader_time_to_stop() -> None:
    with pytest.raises(ValueError, match="retry < renew < lease"):
        Timing(lease_seconds=10, renew_seconds=10, retry_seconds=1)


def test_a_follower_takes_over_only_after_a_whole_lease_unchanged_on_its_own_clock() -> None:
    store, ca, cb = LeaseStore(), Clock(), Clock()
    cb.now = 5000.0  # another node's clock: never compared with the leader's
    a, b = elector(store, ca, "a"), elector(store, cb, "b")

    async def run() -> None:
        assert await a.try_acquire_or_renew()
        assert a.leading()
        assert not await b.try_acquire_or_renew()  # first sight of a's record
        for _ in range(3):  # a renews every second: b never sees the same record for 10 s
            ca.now += 1
            cb.now += 1
            assert await a.try_acquire_or_renew()
            assert not await b.try_acquire_or_renew()
        # a dies: b must wait a whole lease after it last saw the record change
        cb.now += 9.5
        assert not await b.try_acquire_or_renew()
        cb.now += 0.5
        assert await b.try_acquire_or_renew()
        assert b.leading()
        assert store.lease is not None
        assert store.lease["spec"]["holderIdentity"] == "b"
        assert store.lease["spec"]["leaseTransitions"] == 1

    asyncio.run(run())


def test_a_leader_stops_acting_at_its_renew_deadline_before_anyone_may_take_over() -> None:
    store, ca = LeaseStore(), Clock()
    a = elector(store, ca, "a")

    async def run() -> None:
        assert await a.try_acquire_or_renew()
        store.down = True  # a brownout: renewals fail
        ca.now += 6.9
        with pytest.raises(ApiError):
            await a.try_acquire_or_renew()
        assert a.leading()
        ca.now += 0.2  # 7.1 s after the start of the last renewal (< 10 s lease)
        assert not a.leading()
        store.down = False  # the brownout ends and nobody took the Lease: a leads again
        assert await a.try_acquire_or_renew()
        assert a.leading()

    asyncio.run(run())


def test_two_candidates_racing_for_an_expired_lease_one_wins() -> None:
    store, clock = LeaseStore(), Clock()
    a, b, c = (elector(store, clock, n) for n in "abc")

    async def run() -> None:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        assert not await c.try_acquire_or_renew()
        clock.now += 10
        results = [await b.try_acquire_or_renew(), await c.try_acquire_or_renew()]
        assert results == [True, False]  # c read b's new record: not expired for it

    asyncio.run(run())


def test_writes_are_refused_locally_while_not_leading() -> None:
    configuration = k8s_client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nothing listens: a request would fail to connect
    api = KubeApi(configuration, attempts=1)
    api.may_write = lambda: False

    async def run() -> None:
        with pytest.raises(NotLeading):
            await api.merge_patch("/api/v1/namespaces/ns/pods/p", {"metadata": {}})
        with pytest.raises(NotLeading):
            await api.create("/api/v1/namespaces/ns/events", {})
        with pytest.raises(ApiError) as read:  # reads go out (and fail to connect here)
            await api.get("/api/v1/namespaces/ns/pods/p")
        assert not isinstance(read.value, NotLeading)
        await api.close()

    asyncio.run(run())
