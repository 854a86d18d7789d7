"""The dashboard's ASGI app (FastAPI): pages, the JSON API, the SSE stream (/tmp design: README
"Dashboard").

``create_app(settings)`` wires everything in one place: the users and the session signer, the
merged state, the SSE hub, the feed (Redis snapshot, then the output topics), the data-health
refresher and the alert store. Background tasks run in the app's lifespan; none of them can
stop the app: Kafka away (the state keeps what it has, the reader restarts), Redis away (the
topics fill the state), PostgreSQL away (the alert list and acks answer 503).

Operations (issue 15), without sign-in (the bodies carry no personal data): ``/metrics``
(``dashboard.metrics`` and the shared families), ``/livez`` (the loop's heartbeat) and
``/readyz``: the feed has read the output topics to their end once and is no more than
``dashboard_ready_max_lag`` records behind, Redis answers PING, PostgreSQL ``SELECT 1``, Kafka a
metadata request (the feed's own client). ``/healthz`` stays as it was (the feed's progress:
``feed_ready``, ``records``, ``sse_clients``; always 200), for tools and tests that follow the load.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from dashboard.auth import (
    COOKIE,
    SessionSigner,
    User,
    authenticate,
    load_users,
    may_acknowledge,
    visible_alerts,
)
from dashboard.feed import DataHealth, OutputFeed, load_redis_snapshot
from dashboard.hub import Hub, Subscription, overview_event
from dashboard.metrics import SSE_CLIENTS, HttpMetrics, feed_lag, set_feed_lag, set_held
from dashboard.state import KINDS, OPEN_STATUSES, DashboardState
from dashboard.store import AlertStore, StoreUnavailable
from gridpulse.settings import Settings
from observability.checks import kafka_answers, postgres_answers
from observability.health import Check, Health
from observability.metrics import exposition
from scoring import ModelConfig, load_config
from scoring.explain import explain_document

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
STATIC = WEB / "static"
ECHARTS = WEB / "node_modules" / "echarts" / "dist" / "echarts.min.js"
PAGES = {
    "/": "index.html",
    "/matrix": "matrix.html",
    "/customers/{customer_id}": "customer.html",
    "/alerts": "alerts.html",
    "/outages": "outages.html",
    "/reliability": "reliability.html",
    "/areas": "areas.html",
}
LOGIN_PAGE = "login.html"
EVENT_KINDS = (*KINDS, "overview")
RESTORED_WITHIN_S = 7 * 86400.0
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "info": 3}


class Login(BaseModel):
    user: str
    password: str


@dataclass
class Dashboard:
    """Everything the routes share."""

    settings: Settings
    users: dict[str, User]
    signer: SessionSigner
    state: DashboardState
    hub: Hub
    store: AlertStore
    health: DataHealth
    model: ModelConfig
    clock: Callable[[], float] = time.time
    feed: OutputFeed | None = None
    matrix_gzip: tuple[bytes | None, bytes] = (None, b"")
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ops: Health = field(default_factory=lambda: Health("dashboard"))
    redis: Any = None  # a client for the readiness check's PING, made on first use

    def __post_init__(self) -> None:
        self.ops.add_check("feed", self.check_feed, timeout_s=2.0)
        self.ops.add_check("redis", self.check_redis, timeout_s=2.0, dependency=True)
        self.ops.add_check("postgres", self.check_postgres, timeout_s=3.0, dependency=True)
        self.ops.add_check("kafka", self.check_kafka, timeout_s=5.0, dependency=True)

    # ------------------------------------------------------------------ operations

    async def check_feed(self) -> Check:
        feed = self.feed
        if feed is None:
            return Check(False, "the feed is not running")
        if not feed.ready.is_set():
            return Check(False, f"loading: {feed.records} records read")
        reader = feed.reader()
        if reader is None:
            return Check(
                True,
                f"caught up once, {feed.records} records read; no reader (restarting, or no output topic)",
            )
        behind = sum((await feed_lag(*reader)).values())
        bound = self.settings.dashboard_ready_max_lag
        return Check(behind <= bound, f"{behind} records behind (bound {bound}), {feed.records} read")

    async def check_redis(self) -> Check:
        if self.redis is None:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(
                self.settings.redis_url, socket_timeout=1.5, socket_connect_timeout=1.5
            )
        await self.redis.ping()
        return Check(True, "PING answered")

    async def check_postgres(self) -> Check:
        return await postgres_answers(self.settings)

    async def check_kafka(self) -> Check:
        # the feed's own client while a reader runs; else one of the same settings
        reader = self.feed.reader() if self.feed is not None else None
        return await kafka_answers(self.settings, reader[0] if reader is not None else None)

    async def refresh_metrics(self) -> None:
        """The gauges read from the state at each scrape: documents, customers, SSE clients,
        the feed's lag."""
        set_held(self.state.entries)
        SSE_CLIENTS.set(len(self.hub.clients))
        reader = self.feed.reader() if self.feed is not None else None
        if reader is not None:
            try:
                set_feed_lag(await asyncio.wait_for(feed_lag(*reader), 2.0))
            except Exception:  # Kafka away (or no answer in time): the last figures stay
                log.debug("dashboard: feed lag not measured", exc_info=True)

    # ------------------------------------------------------------------ sessions

    def session_user(self, request: Request) -> User | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        name = self.signer.verify(token, self.clock())
        return self.users.get(name) if name is not None else None

    # ------------------------------------------------------------------ views

    def overview(self) -> dict[str, Any]:
        now = self.clock()
        counts = self.state.counts()
        newest = self.state.newest_reading_ts
        return {
            "as_of": _rfc3339(now),
            "customers_scored": counts["customers_scored"],
            "quadrants": counts["quadrants"],
            "credit_grades": counts["credit_grades"],
            "safety_grades": counts["safety_grades"],
            "service_tiers": counts["service_tiers"],
            "alerts_open": counts["alerts_open"],
            "reliability_system": counts["reliability_system"],
            "data_health": {
                "dlq": self.health.dlq,
                "consumer_lag": self.health.consumer_lag,
                "newest_reading_ts": self.state.newest_reading_text,
                "newest_reading_age_s": None if newest is None else round(now - newest, 3),
                "malformed": counts["malformed"],
            },
        }

    def outages(self) -> dict[str, list[dict[str, Any]]]:
        now = self.clock()
        active, planned, restored = [], [], []
        for doc in self.state.docs("alert"):
            if doc.get("kind") != "outage":
                continue
            status = doc.get("status")
            start = _epoch(doc.get("planned_start"))
            view = {**doc, "totals": outage_totals(doc.get("affected") or [])}
            if status == "resolved":
                ts = _epoch(doc.get("ts"))
                if ts is not None and now - ts <= RESTORED_WITHIN_S:
                    restored.append(view)
            elif doc.get("planned") and start is not None and start > now:
                planned.append(view)
            elif status in OPEN_STATUSES:
                active.append(view)
        active.sort(key=lambda d: (SEVERITY_ORDER.get(d.get("severity", ""), 9), -(_epoch(d.get("ts")) or 0)))
        planned.sort(key=lambda d: _epoch(d.get("planned_start")) or 0)
        restored.sort(key=lambda d: -(_epoch(d.get("ts")) or 0))
        return {"active": active, "planned": planned, "restored": restored}

    def reliability(self) -> dict[str, Any]:
        feeders = [d for d in self.state.docs("reliability") if d.get("scope_id") != "system"]
        feeders.sort(key=lambda d: _desc_nulls_last(d.get("SAIDI")))
        return {"system": self.state.doc("reliability", "system"), "feeders": feeders}

    def areas(self) -> dict[str, Any]:
        suspects: dict[str, dict[str, dict[str, Any]]] = {}
        for alert in self.state.docs("alert"):
            if (
                alert.get("kind") == "inspection"
                and alert.get("scope") == "transformer_area"
                and alert.get("status") in OPEN_STATUSES
            ):
                area = suspects.setdefault(str(alert.get("transformer_area")), {})
                for s in alert.get("suspects") or []:
                    cid = s.get("customer_id")
                    if cid not in area or float(s.get("score") or 0) > float(area[cid].get("score") or 0):
                        area[cid] = s
        out = []
        for doc in self.state.docs("area"):
            listed = suspects.get(str(doc.get("transformer_area")), {})
            ranked = sorted(listed.values(), key=lambda s: -float(s.get("score") or 0))
            out.append({**doc, "suspects": ranked})
        out.sort(key=lambda d: _desc_nulls_last((d.get("d30") or {}).get("loss_rate")))
        return {"areas": out}

    def explanation(self, scores: dict[str, Any] | None) -> dict[str, Any] | None:
        if scores is None:
            return None
        try:
            return explain_document(scores, self.model)
        except (ValueError, KeyError, TypeError):
            return None

    async def overview_pusher(self) -> None:
        """``event: overview`` at most once a second, when the state or the health changed."""
        pushed = -1
        while True:
            await asyncio.sleep(1.0)
            version = self.state.version
            if version != pushed or self.health.changed.is_set():
                self.health.changed.clear()
                pushed = version
                if any("overview" in s.kinds for s in self.hub.clients.values()):
                    self.hub.publish_overview(orjson.dumps(self.overview()))

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, feed: bool = True) -> None:
        self.ops.start()
        if not feed:
            return
        self.feed = OutputFeed(self.settings, self.state, self.hub)

        async def feed_task() -> None:
            t0 = time.monotonic()
            n = await load_redis_snapshot(self.settings, self.state)
            log.info("dashboard: Redis snapshot %s in %.1f s", n, time.monotonic() - t0)
            assert self.feed is not None
            await self.feed.run()

        self.tasks = [
            asyncio.create_task(feed_task(), name="dashboard-feed"),
            asyncio.create_task(self.health.run(), name="dashboard-health"),
            asyncio.create_task(self.overview_pusher(), name="dashboard-overview"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # each must be awaited
                pass
        self.tasks = []
        await self.store.close()
        await self.ops.stop()
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


def outage_totals(affected: list[dict[str, Any]]) -> dict[str, Any]:
    supply = sum(1 for a in affected if a.get("impact") == "loss_of_supply")
    return {
        "loss_of_supply": supply,
        "loss_of_redundancy": sum(1 for a in affected if a.get("impact") == "loss_of_redundancy"),
        "kw": sum(float(a["est_kw"]) for a in affected if a.get("est_kw") is not None),
        "cny_per_h": sum(
            float(a["revenue_at_risk_cny_per_h"])
            for a in affected
            if a.get("revenue_at_risk_cny_per_h") is not None
        ),
    }


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo else None


def _desc_nulls_last(value: Any) -> tuple[int, float]:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return (0, -float(value))
    return (1, 0.0)


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def build_dashboard(settings: Settings, *, clock: Callable[[], float] = time.time) -> Dashboard:
    users = load_users(settings.dashboard_users, settings.dashboard_users_file)
    secret = (
        settings.dashboard_secret.get_secret_value().encode()
        if settings.dashboard_secret is not None
        else secrets.token_bytes(32)
    )
    model = load_config(settings.scoring_model_path) if settings.scoring_model_path else ModelConfig()
    return Dashboard(
        settings=settings,
        users=users,
        signer=SessionSigner(secret),
        state=DashboardState(),
        hub=Hub(settings.dashboard_client_queue),
        store=AlertStore(settings.pg_connect_dsn()),
        health=DataHealth(settings, clock=clock),
        model=model,
        clock=clock,
    )


def api_user(request: Request) -> User:
    """The signed-in user of an API request; 401 without a valid session."""
    dash: Dashboard = request.app.state.dashboard
    user = dash.session_user(request)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user


SessionUser = Annotated[User, Depends(api_user)]


def create_app(settings: Settings, *, dashboard: Dashboard | None = None, start_feed: bool = True) -> FastAPI:
    dash = dashboard or build_dashboard(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await dash.start(feed=start_feed)
        try:
            yield
        finally:
            await dash.stop()

    app = FastAPI(
        title="gridpulse dashboard",
        version="1",
        description="Live customer statistics, scores, alerts, outages, reliability and line loss "
        "from the gridpulse output topics. Every /api route but /api/login needs a session "
        "(cookie gp_session from POST /api/login).",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.dashboard = dash
    app.add_middleware(HttpMetrics)

    # ------------------------------------------------------------------ operations (no sign-in)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await dash.refresh_metrics()
        body, content_type = exposition()
        return Response(body, headers={"Content-Type": content_type})

    @app.get("/livez", include_in_schema=False)
    async def livez() -> Response:
        ok, body = dash.ops.live()
        return _json(body, 200 if ok else 503)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        ok, body = await dash.ops.ready()
        return _json(body, 200 if ok else 503)

    # ------------------------------------------------------------------ access

    @app.post("/api/login", tags=["access"])
    async def login(body: Login, request: Request) -> Response:
        user = await asyncio.to_thread(authenticate, dash.users, body.user, body.password)
        if user is None:
            log.info("dashboard: failed sign-in")
            return _json({"detail": "wrong user or password"}, 401)
        hours = settings.dashboard_session_hours
        token = dash.signer.sign(user.user, dash.clock() + hours * 3600)
        response = _json(user.public())
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(hours * 3600),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("dashboard: %s signed in (%s)", user.user, user.role)
        return response

    @app.post("/api/logout", tags=["access"])
    async def logout(user: SessionUser) -> Response:
        response = _json({"user": user.user, "signed_out": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/api/me", tags=["access"])
    async def me(user: SessionUser) -> dict[str, Any]:
        return user.public()

    # ------------------------------------------------------------------ data

    @app.get("/api/overview", tags=["data"])
    async def overview(user: SessionUser) -> Response:
        return _json(dash.overview())

    @app.get("/api/matrix", tags=["data"])
    async def matrix(request: Request, user: SessionUser) -> Response:
        """Every scored customer as columns (ids, current, potential, credit, kwh30, quadrant),
        the model's origin and version (gzip-encoded when the client accepts it). Header
        ``X-Feed-Version``: the state's version the answer holds (a stream's ``subscribed``
        event names the version it started at: a page can tell whether it missed a change)."""
        body = dash.state.matrix_json()
        version = {"X-Feed-Version": str(dash.state.version)}
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return Response(
                body, media_type="application/json", headers={"Vary": "Accept-Encoding", **version}
            )
        if dash.matrix_gzip[0] is not body:
            # once per change of the matrix: 6.7 MB at 100,000 customers -> ~1/4 of it
            dash.matrix_gzip = (body, gzip.compress(body, compresslevel=1))
        return Response(
            dash.matrix_gzip[1],
            media_type="application/json",
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding", **version},
        )

    @app.get("/api/customers/{customer_id}", tags=["data"])
    async def customer(customer_id: str, user: SessionUser) -> Response:
        stats = dash.state.doc("stats", customer_id)
        scores = dash.state.doc("scores", customer_id)
        if stats is None and scores is None:
            raise HTTPException(404, f"no statistics nor scores of customer {customer_id}")
        alerts: list[dict[str, Any]] = []
        alerts_error: str | None = None
        try:
            alerts = await dash.store.for_customer(
                customer_id, only_manager=user.manager_id if user.role == "manager" else None
            )
        except StoreUnavailable as exc:
            alerts_error = str(exc)
        return _json(
            {
                "customer_id": customer_id,
                "stats": stats,
                "scores": scores,
                "explanation": dash.explanation(scores),
                "alerts": alerts,
                "alerts_error": alerts_error,
            }
        )

    @app.get("/api/alerts", tags=["alerts"])
    async def alerts(
        user: SessionUser,
        kind: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        manager: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> Response:
        try:
            rows = await dash.store.alerts(
                kind=kind or None,
                severity=severity or None,
                status=status or None,
                manager=manager or None,
                only_manager=user.manager_id if user.role == "manager" else None,
                limit=limit,
            )
        except StoreUnavailable as exc:
            raise HTTPException(503, str(exc)) from exc
        return _json({"alerts": visible_alerts(user, rows)})

    @app.post("/api/alerts/{alert_id}/ack", tags=["alerts"])
    async def ack(alert_id: str, user: SessionUser) -> Response:
        if user.role == "viewer":
            raise HTTPException(403, "a viewer cannot acknowledge alerts")
        try:
            managers = await dash.store.managers_of(alert_id)
            if managers is None:
                raise HTTPException(404, f"no alert {alert_id} in the alert store")
            if not may_acknowledge(user, managers):
                raise HTTPException(403, "not an alert of your customers")
            done = await dash.store.acknowledge(alert_id, user.ack_name)
        except StoreUnavailable as exc:
            raise HTTPException(503, str(exc)) from exc
        log.info("dashboard: %s acknowledged %s (%s)", user.ack_name, alert_id, "done" if done else "already")
        return _json({"alert_id": alert_id, "acknowledged": done})

    @app.get("/api/outages", tags=["data"])
    async def outages(user: SessionUser) -> Response:
        return _json(dash.outages())

    @app.get("/api/reliability", tags=["data"])
    async def reliability(user: SessionUser) -> Response:
        return _json(dash.reliability())

    @app.get("/api/areas", tags=["data"])
    async def areas(user: SessionUser) -> Response:
        return _json(dash.areas())

    # ------------------------------------------------------------------ live

    @app.get("/events", tags=["live"], response_class=StreamingResponse)
    async def events(
        user: SessionUser, kinds: str | None = None, customer: str | None = None
    ) -> StreamingResponse:
        """Server-Sent Events: ``update`` {kind, key, doc} per change, ``overview`` at most once a
        second, ``reset`` when this client fell too far behind (refetch), ``: ping`` every 15 s.
        After the first overview: ``subscribed`` {"version": n}, the state's version when this
        client was subscribed (every change after it comes on the stream; a snapshot whose
        ``X-Feed-Version`` is lower may lack a change in between: refetch it)."""
        wanted = (
            frozenset(k.strip() for k in kinds.split(",") if k.strip()) if kinds else frozenset(EVENT_KINDS)
        )
        unknown = wanted - set(EVENT_KINDS)
        if unknown:
            raise HTTPException(422, f"unknown kinds: {', '.join(sorted(unknown))}")
        queue = dash.hub.subscribe(Subscription(wanted, customer or None))
        first = [overview_event(orjson.dumps(dash.overview()))] if "overview" in wanted else []
        # no await between subscribe() and here: nothing changes the state in between
        first.append(b'event: subscribed\ndata: {"version":%d}\n\n' % dash.state.version)
        return StreamingResponse(
            dash.hub.stream(queue, first),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # ------------------------------------------------------------------ pages

    def page(name: str) -> Callable[..., Any]:
        async def serve(request: Request) -> Response:
            if dash.session_user(request) is None:
                # back to the page asked for once signed in (the sign-in page accepts only a
                # local path as next)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            return _page_file(name)

        return serve

    for path, name in PAGES.items():
        app.add_api_route(path, page(name), methods=["GET"], include_in_schema=False)

    @app.get("/login", include_in_schema=False)
    async def login_page() -> Response:
        return _page_file(LOGIN_PAGE)

    @app.get("/vendor/echarts.min.js", include_in_schema=False)
    async def echarts() -> Response:
        if not ECHARTS.is_file():
            raise HTTPException(
                404, "echarts is not installed: run npm ci in dashboard/web (scripts/bootstrap.sh)"
            )
        # the file changes only with package-lock.json (npm ci): a day in the browser's cache
        return FileResponse(
            ECHARTS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        if dash.session_user(request) is None:
            return RedirectResponse("/login?next=%2Fdocs", status_code=303)
        return HTMLResponse(_docs_page(app.openapi()))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        feed = dash.feed
        return {
            "feed_ready": bool(feed is not None and feed.ready.is_set()),
            "records": feed.records if feed is not None else 0,
            "sse_clients": len(dash.hub.clients),
        }

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _page_file(name: str) -> Response:
    path = STATIC / name
    if not path.is_file():
        raise HTTPException(404, f"page {name} is not in dashboard/web/static")
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


def _docs_page(spec: dict[str, Any]) -> str:
    """The API's routes from the OpenAPI schema, as a plain page (FastAPI's Swagger UI loads its
    scripts from a CDN; the dashboard loads nothing from the internet)."""
    from html import escape

    rows = []
    for path, ops in sorted(spec.get("paths", {}).items()):
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            rows.append(
                f"<tr><td>{escape(method.upper())}</td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(params)}</td><td>{escape(op.get('summary', ''))}</td>"
                f"<td>{escape((op.get('description') or '').strip())}</td></tr>"
            )
    return (
        "<!doctype html><meta charset='utf-8'><title>gridpulse dashboard API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{border-top:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}</style><h1>gridpulse dashboard API</h1>"
        "<p>The schema: <a href='/openapi.json'>/openapi.json</a></p><table><tr><th>method</th>"
        "<th>path</th><th>parameters</th><th>summary</th><th>description</th></tr>"
        + "".join(rows)
        + "</table>"
    )
