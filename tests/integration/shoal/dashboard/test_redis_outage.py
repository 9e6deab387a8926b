"""A Redis outage while the dashboard runs: a banner and one-line 503s, then recovery."""

from __future__ import annotations

import aiohttp
import pytest

from tests.harness.async_waiting import eventually
from tests.harness.dashboard import serve_dashboard
from tests.harness.redis_server import RedisServer
from worker_runtime import Queue

pytestmark = pytest.mark.integration


async def test_outage_shows_a_banner_and_503_then_recovers(own_redis: RedisServer) -> None:
    async with Queue("mail", redis_url=own_redis.url) as q:
        await q.enqueue({})
    async with serve_dashboard(redis_url=own_redis.url) as url, aiohttp.ClientSession() as http:

        async def queues_page() -> str:
            async with http.get(f"{url}/queues") as response:
                assert response.status == 200
                return await response.text()

        assert "cannot reach Redis" not in await queues_page()
        own_redis.stop()

        async def banner() -> bool:
            return "cannot reach Redis" in await queues_page()

        await eventually(banner, timeout=20, interval=0.2, description="the outage banner")
        async with http.get(f"{url}/dead?queue=mail") as response:
            body = await response.text()
        assert response.status == 503
        assert "Traceback" not in body
        assert "cannot reach Redis" in body

        own_redis.start()

        async def recovered() -> bool:
            return "cannot reach Redis" not in await queues_page()

        await eventually(recovered, timeout=30, interval=0.2, description="recovery")
        async with http.get(f"{url}/dead?queue=mail") as response:
            assert response.status == 200
