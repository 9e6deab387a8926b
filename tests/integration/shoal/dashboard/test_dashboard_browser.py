"""The dashboard end to end: a real chromium against a real Redis with a real worker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from tests.harness.async_waiting import eventually
from tests.harness.dashboard import TOKEN, chromium, serve_dashboard
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, NonRetryableError, Queue, Worker
from worker_runtime.observing.heartbeat import Heartbeat

pytestmark = pytest.mark.integration

QUEUE = "mail"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


class Mailer:
    """A worker whose `mail` processor fails (non-retryably) while ``failing`` is set."""

    def __init__(self, redis_url: str) -> None:
        self.failing = True
        self.runs: list[str] = []
        self.worker = Worker(
            settings=fast_settings(redis_url),
            extensions=[Heartbeat(interval_seconds=0.5)],  # what the workers page lists
        )

        @self.worker.processor(QUEUE)
        async def send(job: Job[Any]) -> str:
            self.runs.append(job.id)
            if self.failing:
                raise NonRetryableError("smtp said no")
            return "sent"


async def reload_until(page: Page, url: str, selector: str, *, timeout: float = 15) -> None:
    """Reload ``url`` until ``selector`` is on the page (for pages that are not live)."""

    async def present() -> bool:
        await page.goto(url)
        return await page.locator(selector).count() > 0

    await eventually(present, timeout=timeout, interval=0.2, description=selector)


async def test_queue_page_shows_counts_after_enqueueing(redis_url: str, browser: Browser) -> None:
    async with Queue(QUEUE, redis_url=redis_url) as q:
        await q.enqueue_many([{"n": i} for i in range(3)])
        await q.enqueue({"later": True}, delay_seconds=3600)
    async with serve_dashboard(redis_url=redis_url) as url:
        page = await browser.new_page()
        await page.goto(f"{url}/queues")
        row = page.locator(f"tr[data-queue={QUEUE}]")
        assert await row.locator("[data-count=waiting]").inner_text() == "3"
        assert await row.locator("[data-count=delayed]").inner_text() == "1"
        assert await row.locator("[data-count=dead]").inner_text() == "0"


async def test_live_view_updates_without_a_reload(redis_url: str, browser: Browser) -> None:
    async with (
        Queue(QUEUE, redis_url=redis_url) as q,
        serve_dashboard(redis_url=redis_url, queues=(QUEUE,)) as url,
    ):
        page = await browser.new_page()
        await page.goto(f"{url}/queues")
        waiting = page.locator(f"tr[data-queue={QUEUE}] [data-count=waiting]")
        assert await waiting.inner_text() == "0"
        await page.evaluate("window.notReloaded = true")
        await q.enqueue_many([{"n": i} for i in range(5)])

        async def shows_five() -> bool:
            return await waiting.inner_text() == "5"

        await eventually(shows_five, timeout=15, description="the live count")
        assert await page.evaluate("window.notReloaded === true")  # same document: SSE did it
        assert int(await page.evaluate("document.body.dataset.liveUpdates")) >= 1


async def test_failing_job_is_dead_lettered_and_replayed_from_the_browser(
    redis_url: str, browser: Browser
) -> None:
    mailer = Mailer(redis_url)
    async with (
        Queue(QUEUE, redis_url=redis_url) as q,
        running(mailer.worker),
        serve_dashboard(redis_url=redis_url, allow_writes=True, token=TOKEN) as url,
    ):
        job = await q.enqueue({"to": "someone@example.com"})
        page = await browser.new_page()
        await reload_until(page, f"{url}/dead?queue={QUEUE}", f"tr[data-job='{job.id}']")
        row = page.locator(f"tr[data-job='{job.id}']")
        assert "smtp said no" in await row.inner_text()
        assert "someone@example.com" not in await page.content()  # payloads hidden by default

        mailer.failing = False
        dialogs: list[str] = []

        async def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await row.locator("input[name=ids]").check()
        await page.fill("input[name=token]", TOKEN)
        await page.click("#replay-selected")
        await page.wait_for_selector("#message")
        assert await page.locator("#message").inner_text() == "replayed 1 job(s)"
        assert dialogs == ["Replay the selected jobs?"]

        async def completed() -> bool:
            record = await q.get_job(job.id)
            return record is not None and record.state == "completed"

        await eventually(completed, timeout=15, description="the replayed job completing")
        assert mailer.runs == [job.id, job.id]
        assert (await q.counts())["dead"] == 0


async def test_a_write_without_the_token_is_refused(redis_url: str, browser: Browser) -> None:
    mailer = Mailer(redis_url)
    async with (
        Queue(QUEUE, redis_url=redis_url) as q,
        running(mailer.worker),
        serve_dashboard(redis_url=redis_url, allow_writes=True, token=TOKEN) as url,
    ):
        job = await q.enqueue({})
        page = await browser.new_page()
        await reload_until(page, f"{url}/dead?queue={QUEUE}", f"tr[data-job='{job.id}']")
        page.on("dialog", lambda dialog: dialog.accept())
        await page.locator(f"tr[data-job='{job.id}'] input[name=ids]").check()
        await page.click("#purge-selected")  # no token typed
        await page.wait_for_selector("#message")
        assert await page.locator("#message").inner_text() == "a token is required for writes"

        # Scripts: the header token is enough; a wrong one, or a form post without the page's
        # CSRF cookie, is refused.
        async with aiohttp.ClientSession() as http:
            wrong = await http.post(
                f"{url}/dead/purge", data={"queue": QUEUE, "ids": job.id},
                headers={"X-Shoal-Token": "not-the-token-at-all"},
            )  # fmt: skip
            no_csrf = await http.post(
                f"{url}/dead/purge",
                data={"queue": QUEUE, "ids": job.id, "token": TOKEN, "confirm": "yes"},
            )
            assert (wrong.status, no_csrf.status) == (403, 403)
        assert (await q.get_job(job.id)) is not None
        assert (await q.counts())["dead"] == 1


async def test_read_only_by_default_refuses_even_the_right_token(redis_url: str) -> None:
    async with Queue(QUEUE, redis_url=redis_url) as q, serve_dashboard(redis_url=redis_url) as url:
        await q.enqueue({})
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{url}/dead/replay", data={"queue": QUEUE, "all": "1"},
                headers={"X-Shoal-Token": TOKEN},
            )  # fmt: skip
            body = await response.text()
            dead_page = await (await http.get(f"{url}/dead?queue={QUEUE}")).text()
    assert response.status == 403
    assert "writes are disabled" in body
    assert "Replay selected" not in dead_page


async def test_workers_and_job_pages(redis_url: str, browser: Browser) -> None:
    mailer = Mailer(redis_url)
    async with (
        Queue(QUEUE, redis_url=redis_url) as q,
        running(mailer.worker),
        serve_dashboard(redis_url=redis_url, show_payloads=True) as url,
    ):
        job = await q.enqueue({"to": "shown@example.com"})
        page = await browser.new_page()
        await page.goto(f"{url}/workers")
        await page.wait_for_selector(f"text={mailer.worker.id}", timeout=15_000)
        await reload_until(page, f"{url}/jobs?id={job.id}", "[data-state]:text('dead')")
        text = await page.locator("#job").inner_text()
        assert "smtp said no" in text
        assert "NonRetryableError" in text or "Traceback" in text
        assert "shown@example.com" in text  # --show-payloads
        started = time.monotonic()
        await page.goto(f"{url}/jobs?id=no-such-job")
        assert await page.locator("#no-job").count() == 1
        assert time.monotonic() - started < 10


async def test_writes_must_say_what_and_be_confirmed(redis_url: str) -> None:
    csrf = "c" * 32
    form = {"queue": QUEUE, "all": "1", "token": TOKEN, "csrf": csrf}
    cookie = {"Cookie": f"shoal_csrf={csrf}"}
    async with (
        serve_dashboard(redis_url=redis_url, allow_writes=True, token=TOKEN) as url,
        aiohttp.ClientSession() as http,
    ):
        header = {"X-Shoal-Token": TOKEN}
        refused = [
            await http.post(f"{url}/dead/replay", data={"queue": QUEUE}, headers=header),
            await http.post(
                f"{url}/dead/replay", data={"queue": "No Such", "all": "1"}, headers=header
            ),
            await http.post(f"{url}/dead/purge", data=form, headers=cookie),
        ]
        texts = [await r.text() for r in refused]
        confirmed = await http.post(
            f"{url}/dead/purge", data={**form, "confirm": "yes"}, headers=cookie
        )
        after = await confirmed.text()
    assert [r.status for r in refused] == [400, 400, 400]
    assert "select at least one job" in texts[0]
    assert "invalid queue name" in texts[1]
    assert "not confirmed" in texts[2]
    assert confirmed.status == 200  # followed the redirect to the dead-letter page
    assert "purged 0 job(s)" in after
