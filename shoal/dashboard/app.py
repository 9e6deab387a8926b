"""The dashboard's aiohttp application: server-rendered pages, an SSE stream, two writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from shoal.dashboard import views
from shoal.dashboard.dead_letters import dead_page
from shoal.dashboard.pools import PoolReader
from shoal.dashboard.sampler import Sampler, known
from shoal.dashboard.security import (
    CSRF_COOKIE,
    TOKEN_HEADER,
    WriteRequest,
    new_csrf_token,
    refusal,
)
from shoal.dashboard.settings import DashboardSettings
from worker_runtime.core.keys import InvalidQueueName, validate_queue_name
from worker_runtime.producing.queue import Queue
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS, RedisClient, connect

SAMPLER = web.AppKey("sampler", Sampler)
SETTINGS = web.AppKey("settings", DashboardSettings)
POOLS = web.AppKey("pools", PoolReader)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
KEEPALIVE_SECONDS = 15.0
REDIS_TIMEOUT_SECONDS = 5.0
LIVE_VIEWS = {"queues": "_queues.html", "workers": "_workers.html", "pools": "_pools.html"}

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shoal.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["shown"] = views.shown
    env.filters["age"] = lambda s: f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"
    return env


def _csrf(request: web.Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or new_csrf_token()


async def _context(request: web.Request, active: str, csrf: str) -> dict[str, Any]:
    app = request.app
    context: dict[str, Any] = {
        "settings": app[SETTINGS],
        "active": active,
        "error": app[SAMPLER].error,
        "csrf": csrf,
        "queues": app[SAMPLER].queues,
        "query": request.query,
        "window": views.window_label(app[SAMPLER]),
    }
    if active in LIVE_VIEWS:
        context.update(await _live(app, active, request))
    return context


async def _live(app: web.Application, view: str, request: web.Request) -> dict[str, Any]:
    sampler = app[SAMPLER]
    if view == "queues":
        return {"rows": views.queue_rows(sampler), "window": views.window_label(sampler)}
    if view == "workers":
        return {"rows": views.worker_rows(sampler.workers)}
    reader = app.get(POOLS)
    if reader is None:
        return {"rows": [], "pool_error": None, "page": 0, "pages": 0, "total": 0, "chart": None}
    rows = await reader.rows()
    size = app[SETTINGS].page_size
    page = _int(request.query.get("page"), 0)
    return {
        "rows": rows[page * size : (page + 1) * size],
        "pool_error": reader.error,
        "page": page,
        "pages": max(1, -(-len(rows) // size)),
        "total": len(rows),
        "chart": reader.history.chart,
    }


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value or default))
    except ValueError:
        return default


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    html = request.app[TEMPLATES].get_template(template).render(**context)
    response = web.Response(text=html, content_type="text/html", status=status, headers=HEADERS)
    if CSRF_COOKIE not in request.cookies:
        response.set_cookie(
            CSRF_COOKIE, context["csrf"], httponly=True, samesite="Strict", path="/"
        )
    return response


async def page(request: web.Request) -> web.Response:
    name = request.match_info["page"]
    if name not in ("queues", "workers", "pools"):
        raise web.HTTPNotFound()
    return render(request, f"{name}.html", await _context(request, name, _csrf(request)))


async def jobs(request: web.Request) -> web.Response:
    sampler = request.app[SAMPLER]
    context = await _context(request, "jobs", _csrf(request))
    job_id = request.query.get("id", "").strip()
    queue = known(sampler.queues, request.query.get("queue"))
    context.update(job=None, job_id=job_id, queue=queue, recent=[])
    if job_id:
        context["job"] = await views.find_job(
            sampler, job_id=job_id, queue=request.query.get("queue") or None
        )
    elif queue:
        context["recent"] = await views.recent_failures(sampler, queue)
    return render(request, "jobs.html", context)


async def dead(request: web.Request) -> web.Response:
    sampler, settings = request.app[SAMPLER], request.app[SETTINGS]
    context = await _context(request, "dead", _csrf(request))
    queue = known(sampler.queues, request.query.get("queue"))
    needle = request.query.get("q", "").strip()
    start = _int(request.query.get("start"), 0)
    result = None
    if queue:
        q = Queue(queue, redis=sampler.redis, prefix=settings.prefix)
        result = await dead_page(q, start=start, size=settings.page_size, needle=needle)
    context.update(queue=queue, needle=needle, result=result, message=request.query.get("msg"))
    if result is not None and result.next_start is not None:
        context["next_url"] = "/dead?" + urlencode(
            {"queue": queue, "q": needle, "start": result.next_start}
        )
    return render(request, "dead.html", context)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _write_request(request: web.Request, form: Any) -> WriteRequest:
    return WriteRequest(
        header_token=request.headers.get(TOKEN_HEADER),
        form_token=_field(form, "token"),
        csrf_cookie=request.cookies.get(CSRF_COOKIE),
        csrf_form=_field(form, "csrf"),
        origin=request.headers.get("Origin"),
        host=request.host,
    )


def _what_to_write(request: web.Request, form: Any) -> tuple[str, list[str] | None] | str:
    """(queue, ids or None for all), or why the form does not say."""
    if TOKEN_HEADER not in request.headers and _field(form, "confirm") != "yes":
        return "not confirmed"
    try:
        queue = validate_queue_name(_field(form, "queue") or "")
    except InvalidQueueName as exc:
        return str(exc)
    if _field(form, "all") == "1":
        return queue, None
    ids = [i for i in form.getall("ids", []) if isinstance(i, str) and i]
    return (queue, ids) if ids else "select at least one job (or all)"


async def write(request: web.Request) -> web.Response:
    settings, sampler = request.app[SETTINGS], request.app[SAMPLER]
    action = request.match_info["action"]
    form = await request.post()
    why = refusal(
        _write_request(request, form), allow_writes=settings.allow_writes, token=settings.token
    )
    what = _what_to_write(request, form) if why is None else why
    if isinstance(what, str):
        context = await _context(request, "dead", _csrf(request))
        context.update(title=f"{action} refused", message=what)
        return render(request, "message.html", context, status=403 if why else 400)
    queue, ids = what
    q = Queue(queue, redis=sampler.redis, prefix=settings.prefix)
    if action == "replay":
        done = f"replayed {await q.replay_dead(ids)} job(s)"
    else:
        done = f"purged {await q.purge_dead(ids)} job(s)"
    raise web.HTTPSeeOther("/dead?" + urlencode({"queue": queue, "msg": done}))


async def events(request: web.Request) -> web.StreamResponse:
    """SSE: the named live fragment, re-rendered after every sample."""
    view = request.query.get("view", "")
    if view not in LIVE_VIEWS:
        raise web.HTTPNotFound()
    app = request.app
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    template = app[TEMPLATES].get_template(LIVE_VIEWS[view])
    version, sent = -1, ""
    with contextlib.suppress(ConnectionResetError):
        while True:
            version = await app[SAMPLER].wait_newer(version, timeout=KEEPALIVE_SECONDS)
            context = {
                "settings": app[SETTINGS],
                "query": request.query,
                **await _live(app, view, request),
            }
            html = template.render(**context)
            if html == sent:
                await response.write(b": keepalive\n\n")
                continue
            sent = html
            data = "".join(f"data: {line}\n" for line in html.splitlines())
            await response.write(f"event: update\n{data}\n".encode())
    return response


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/queues")


async def healthz(request: web.Request) -> web.Response:
    """For probes: the process serves (a Redis outage shows on the pages, not here)."""
    return web.Response(text="ok\n")


@web.middleware
async def redis_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A Redis outage is a one-line 503 page, never a traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except WORKER_RETRY_ERRORS as exc:  # an outage, or a reply such as LOADING or NOPERM
        context = await _context(request, "", _csrf(request))
        context.update(title="Redis unreachable", message=f"cannot reach Redis: {exc}")
        return render(request, "message.html", context, status=503)


def create_app(settings: DashboardSettings, *, redis: RedisClient | None = None) -> web.Application:
    app = web.Application(middlewares=[redis_errors])
    app[SETTINGS] = settings
    app[TEMPLATES] = _environment()
    # Short reply timeout: a page waits seconds at most on a stalled Redis, never a minute.
    redis = redis or connect(settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS)
    app[SAMPLER] = Sampler(redis, settings)
    if settings.kube:
        app[POOLS] = PoolReader(
            settings.namespaces,
            kubeconfig=settings.kubeconfig,
            history_seconds=settings.history_seconds,
        )
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/jobs", jobs)
    app.router.add_get("/dead", dead)
    app.router.add_post("/dead/{action:replay|purge}", write)
    app.router.add_get("/events", events)
    app.router.add_static("/static", str(_static_dir()))
    app.router.add_get("/{page}", page)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _static_dir() -> Any:
    from pathlib import Path

    return Path(__file__).parent / "static"


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    sampler = app[SAMPLER]
    await sampler.sample_once()  # the first page has numbers
    sampler.start()
    if POOLS in app:
        app[POOLS].start()
    yield
    await sampler.stop()
    if POOLS in app:
        await app[POOLS].close()
    await sampler.redis.aclose()
