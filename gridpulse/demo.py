"""`gridpulse demo` (make demo): the whole path from head-end to screen on the real stack.

It uses its own topics (prefix ``demo.``), app id and state directory, wiped at the start so
every run starts clean, then: starts a worker process, publishes simulated customers, bills
and readings (with a share of bad and duplicate messages), waits until the worker has
accounted for every message, and prints what came out of Kafka and Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import orjson
import redis.asyncio as aioredis
from pydantic import SecretStr

from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess
from schemas import topics as contract
from simulator.run import SimulationOptions, run_simulation
from streams.kafka import (
    create_contract_topics,
    delete_topics,
    delete_topics_with_prefix,
    read_all,
    read_latest,
)

DEMO_PREFIX = "demo."


async def wait_accounted(worker: WorkerProcess, expected: int, within_s: float) -> dict[str, Any]:
    """Until applied + duplicates + dead letters of meter.readings reach what was sent."""
    deadline = time.monotonic() + within_s
    counters: dict[str, Any] = {}
    while time.monotonic() < deadline:
        counters = await worker.counters()
        c = counters["counters"]
        dlq = sum(counters["dead_letters"].get(contract.METER_READINGS, {}).values())
        if c.get("readings_applied", 0) + c.get("readings_duplicate", 0) + dlq >= expected:
            return counters
        await asyncio.sleep(0.5)
    raise TimeoutError(f"worker did not account for {expected} readings in {within_s:.0f} s: {counters}")


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def print_stats(title: str, stats: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(
        f"{'customer':<12}{'kWh 30d':>12}{'max kW':>9}{'LF 30d':>8}{'PF month':>9}{'PF std':>7}"
        f"{'adj %':>7}{'adj CNY':>10}{'owed CNY':>11}{'overdue d':>10}"
    )
    for d in stats:
        m, a = d["month"], d["arrears"]
        print(
            f"{d['customer_id']:<12}{_fmt(d['d30']['kwh'], 1):>12}{_fmt(d['d30']['max_kw'], 1):>9}"
            f"{_fmt(d['d30']['load_factor'], 3):>8}{_fmt(m['power_factor'], 3):>9}"
            f"{_fmt(m.get('pf_standard')):>7}{_fmt(m.get('pf_adjustment_pct')):>7}"
            f"{_fmt(m.get('pf_adjustment_cny')):>10}{_fmt(a['outstanding']):>11}"
            f"{_fmt(a['oldest_overdue_days']):>10}"
        )


def demo_settings(base: Settings, run_dir: Path) -> Settings:
    """The demo's settings: its own topics, group and state, and ports of its own beside a worker
    and an alerts consumer that may run on the defaults (each service's /metrics /livez /readyz
    port differs from every other's)."""
    return base.model_copy(
        update={
            "topic_prefix": DEMO_PREFIX,
            "app_id": "gridpulse-demo",
            "data_dir": str(run_dir / "faust"),
            "web_port": base.web_port + 10,
            "alerts_ops_port": base.alerts_ops_port + 10,
            "batch_within_s": 0.2,
            "scoring_interval_s": 3.0,
        }
    )


async def run_demo(base: Settings, customers: int = 40, days: float = 2.0, keep_serving: bool = True) -> int:
    run_dir = ROOT / ".run" / "demo"
    settings = demo_settings(base, run_dir)
    print(f"gridpulse demo: Kafka {settings.kafka_bootstrap}, Redis {settings.redis_url_display()}")
    shutil.rmtree(run_dir, ignore_errors=True)
    names = [settings.topic(t.name) for t in contract.CONTRACT_TOPICS]
    await delete_topics(settings, names)
    await _delete_internal_topics(settings)
    await asyncio.sleep(1.0)  # topic deletion is asynchronous on the broker
    await create_contract_topics(settings)

    demo_dsn = await fresh_database(settings, "gridpulse_demo")
    store_settings = settings.model_copy(update={"pg_dsn": SecretStr(demo_dsn)})
    alerts = WorkerProcess(store_settings, Path(run_dir / "alerts-consumer.log"))
    alerts.start(command=["alerts-consumer"])
    worker = WorkerProcess(settings, Path(run_dir / "worker.log"))
    worker.start(loglevel="info")
    try:
        print("worker: starting (log in .run/demo/worker.log) ...")
        await worker.wait_ready()
        opts = SimulationOptions(
            bootstrap=settings.kafka_bootstrap,
            topic_prefix=settings.topic_prefix,
            customers=customers,
            days=days,
            outages=True,
            kafka_security=settings.aiokafka_security(),
        )
        print(f"head-end: {customers} customers, {days:g} days of 15-minute readings, bills and payments")
        summary = await run_simulation(opts)
        sent = summary.messages[contract.METER_READINGS]
        print(f"head-end: sent {summary.messages} in {summary.elapsed_s:.1f} s")
        counters = await wait_accounted(worker, sent, within_s=180)
        c = counters["counters"]
        print(
            f"worker: readings applied {c.get('readings_applied', 0)}, duplicates dropped "
            f"{c.get('readings_duplicate', 0)}, dead-lettered {counters['dead_letters']}"
        )
        expected = summary.outcomes[contract.METER_READINGS]
        print(f"head-end says: {expected}")
        await asyncio.sleep(1.0)
        stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        docs = list(stats.values())
        print(f"\nstats.customer: the latest of {len(stats)} customers, read back from Kafka")
        print_stats(
            "largest customers (PF tariff adjustment: negative = rebate, positive = surcharge)",
            sorted(docs, key=lambda d: -d["d30"]["kwh"])[:8],
        )
        print_stats(
            "most overdue customers (arrears)",
            sorted(docs, key=lambda d: -d["arrears"]["oldest_overdue_days"])[:6],
        )
        await _show_redis(settings, next(iter(sorted(stats)), None))
        scores = await wait_scores(settings, set(stats), within_s=60)
        print_scores(scores)
        await _show_top(settings)
        await show_outages(settings)
        await wait_credit_settled(worker, settings)
        await show_alerts(settings, demo_dsn)
        await serve_dashboard(store_settings, run_dir, set(scores), keep_serving)
    finally:
        worker.stop()
        alerts.stop()
    return 0


# The demo's sign-ins, printed at the end of `make demo`; their hashes go to the dashboard
# process's settings (never the passwords).
DEMO_USERS: tuple[tuple[str, str, str, str | None], ...] = (
    ("demo", "gridpulse-demo", "supervisor", None),
    ("viewer", "gridpulse-view", "viewer", None),
)


def demo_users(manager_id: str | None) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The dashboard users of the demo: a supervisor, a viewer and, when the population has one,
    the manager of the first customer. Returns the settings' entries and (user, password, role)
    to print."""
    from dashboard.auth import hash_password

    logins = list(DEMO_USERS)
    if manager_id:
        logins.append((manager_id.lower(), "gridpulse-manager", "manager", manager_id))
    entries = []
    for user, password, role, mid in logins:
        entry: dict[str, Any] = {"user": user, "password_hash": hash_password(password), "role": role}
        if mid:
            entry["manager_id"] = mid
        entries.append(entry)
    return entries, [(u, p, r) for u, p, r, _ in logins]


async def serve_dashboard(settings: Settings, run_dir: Path, scored: set[str], keep_serving: bool) -> None:
    """Start `gridpulse dashboard` on the demo's topics and alert store, check that it sees every
    scored customer, print its address and the demo sign-ins, and keep everything running
    until Ctrl-C (unless ``keep_serving`` is false: scripts)."""
    managers = await _first_manager(settings)
    entries, logins = demo_users(managers)
    dash_settings = settings.model_copy(update={"dashboard_users": entries})
    dashboard = WorkerProcess(dash_settings, Path(run_dir / "dashboard.log"))
    dashboard.start(command=["dashboard", "--loglevel", "warning"])
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    try:
        overview = await _dashboard_overview(dashboard, url, logins[0], len(scored), within_s=60)
        print(f"\ndashboard: {url}  (log in .run/demo/dashboard.log)")
        print(
            "  metrics and health (/metrics, /livez, /readyz): worker "
            f"http://127.0.0.1:{settings.web_port}/, alerts consumer "
            f"http://127.0.0.1:{settings.alerts_ops_port}/, dashboard {url}"
        )
        print(
            f"  sees {overview.get('customers_scored')} scored customers; value matrix quadrants "
            f"{overview.get('quadrants')}"
        )
        for user, password, role in logins:
            print(f"  sign in as {user} / {password}  ({role})")
        if not keep_serving:
            print("GRIDPULSE_DEMO_EXIT set: stopping the demo's processes")
            return
        print("worker, alert consumer and dashboard keep running: Ctrl-C stops them")
        try:
            # polled, not a thread blocked in proc.wait(): Ctrl-C must end the demo at once
            while dashboard.running:  # noqa: ASYNC110
                await asyncio.sleep(1.0)
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        if not dashboard.running:
            print(f"dashboard exited:\n{dashboard.log_tail()}")
    finally:
        dashboard.stop()


async def _first_manager(settings: Settings) -> str | None:
    """The customer manager of the first customer (by id) in the demo's ``customers`` topic."""
    profiles = await read_latest(settings, contract.CUSTOMERS, "customer_id")
    for cid in sorted(profiles):
        manager = profiles[cid].get("manager_id")
        if manager:
            return str(manager)
    return None


async def _dashboard_overview(
    dashboard: WorkerProcess, url: str, login: tuple[str, str, str], scored: int, within_s: float
) -> dict[str, Any]:
    """Sign in to the dashboard and wait until its overview counts every scored customer."""
    import aiohttp

    deadline = time.monotonic() + within_s
    overview: dict[str, Any] = {}
    signed_in = False
    # unsafe=True: aiohttp's cookie jar otherwise ignores cookies of an IP address (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        while time.monotonic() < deadline:
            if not dashboard.running:
                raise RuntimeError(f"dashboard exited:\n{dashboard.log_tail()}")
            try:
                if not signed_in:
                    creds = {"user": login[0], "password": login[1]}
                    async with http.post(f"{url}api/login", json=creds) as r:
                        signed_in = r.status == 200
                if signed_in:
                    async with http.get(f"{url}api/overview") as o:
                        overview = await o.json()
                    if overview.get("customers_scored", 0) >= scored:
                        return overview
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(
        f"the dashboard did not show {scored} scored customers: {overview}\n{dashboard.log_tail()}"
    )


async def wait_scores(settings: Settings, customers: set[str], within_s: float) -> dict[str, Any]:
    """Until every customer has a score and a population pass published nothing new: scores
    given on arrival are against the population as it was then; passes settle them."""
    deadline = time.monotonic() + within_s
    scores: dict[str, Any] = {}
    while time.monotonic() < deadline:
        latest = await read_latest(settings, contract.SCORES_CUSTOMER, "customer_id")
        if customers <= set(latest) and latest == scores:
            return latest
        scores = latest
        await asyncio.sleep(2.5 * settings.scoring_interval_s)
    return scores


def print_scores(scores: dict[str, Any]) -> None:
    docs = sorted(scores.values(), key=lambda d: -(d["current_value"] + d["potential_value"]))
    quadrants = Counter(d["quadrant"] for d in docs)
    grades = Counter(d["credit_grade"] for d in docs)
    model = docs[0]["model_version"] if docs else "-"
    tiers = Counter(d["service_tier"] for d in docs)
    print(f"\nscores.customer: {len(docs)} customers scored (model {model})")
    print(f"  value matrix {dict(quadrants)}; service tiers {dict(tiers)}")
    print(f"  credit grades {dict(sorted(grades.items()))}")
    print(
        f"{'customer':<12}{'current':>9}{'potential':>10}  {'quadrant':<12}{'tier':<9}"
        f"{'credit':>7}{'safety':>7}"
    )
    for d in docs[:6] + docs[-3:]:
        print(
            f"{d['customer_id']:<12}{d['current_value']:>9.3f}{d['potential_value']:>10.3f}  "
            f"{d['quadrant']:<12}{d['service_tier']:<9}{d['credit_grade']:>7}{d['safety_grade']:>7}"
        )


async def _show_top(settings: Settings) -> None:
    client = aioredis.from_url(settings.redis_url)
    try:
        key = f"{settings.topic_prefix}gp:scores:by_value"
        top: list[tuple[bytes, float]] = await client.zrevrange(key, 0, 4, withscores=True)  # type: ignore[assignment]  # redis-py types the reply loosely
        shown = ", ".join(f"{cid.decode()} {value:.3f}" for cid, value in top)
        print(f"\nRedis ZREVRANGE {key} 0 4: {shown}")
    finally:
        await client.aclose()


async def fresh_database(settings: Settings, name: str) -> str:
    """An empty database for the demo's alert store (dropped and made anew each run)."""
    dsn = settings.pg_dsn.get_secret_value()  # returned without the password of pg_password_file
    conn = await asyncpg.connect(settings.pg_connect_dsn())
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunparse(urlparse(dsn)._replace(path=f"/{name}"))


async def show_outages(settings: Settings) -> None:
    outages = await read_latest(settings, contract.ALERTS_OUTAGE, "alert_id")
    print(f"\nalerts.outage: {len(outages)} outages")
    for alert in sorted(outages.values(), key=lambda a: a["ts"])[:5]:
        hit = alert["affected"]
        supply = sum(1 for a in hit if a["impact"] == "loss_of_supply")
        important = [a for a in hit if a["importance"] != "none"]
        print(
            f"  [{alert['severity']:<8}] {alert['status']:<9} {alert['scope']} {alert['scope_id']}"
            f"{' (planned)' if alert.get('planned') else ''}: {len(hit)} customers, {supply} without "
            f"supply, {len(important)} important, {len(alert['manager_ids'])} managers told"
        )
        for a in important[:2]:
            print(
                f"      {a['customer_id']} {a['importance']}, safety {a['safety_grade']}, {a['impact']}, "
                f"~{_fmt(a['est_kw'], 1)} kW, {_fmt(a['revenue_at_risk_cny_per_h'])} CNY/h at risk"
            )
    indices = await read_latest(settings, contract.RELIABILITY_INDICES, "scope_id")
    system = indices.get("system")
    if system:
        print(
            f"  reliability {system['year']} (system): SAIFI {_fmt(system['SAIFI'], 3)}, "
            f"SAIDI {_fmt(system['SAIDI'], 1)} min, CAIDI {_fmt(system['CAIDI'], 1)} min, "
            f"momentary {system['momentary_interruptions']}"
        )


async def wait_credit_settled(worker: WorkerProcess, settings: Settings, within_s: float = 120.0) -> None:
    """Until no customer's billing history is settling and the open hold has passed since: the
    credit warnings then describe the customers as they are (alerts.credit_rules)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not (await worker.counters())["counters"].get("credit_settling"):
            await asyncio.sleep(settings.credit_open_hold_s + 2.0)
            return
        await asyncio.sleep(1.0)


async def show_alerts(settings: Settings, dsn: str, within_s: float = 30.0) -> None:
    """The alerts as customer managers read them: from the alert store (PostgreSQL), which
    `gridpulse alerts-consumer` fills from alerts.credit and alerts.outage."""
    published = {
        **await read_latest(settings, contract.ALERTS_CREDIT, "alert_id"),
        **await read_latest(settings, contract.ALERTS_OUTAGE, "alert_id"),
    }
    conn = await asyncpg.connect(settings.model_copy(update={"pg_dsn": SecretStr(dsn)}).pg_connect_dsn())
    try:
        deadline = time.monotonic() + within_s
        stored = 0
        while time.monotonic() < deadline:
            stored = (
                await conn.fetchval("SELECT count(*) FROM alerts")
                if await conn.fetchval("SELECT to_regclass('alerts') IS NOT NULL")
                else 0
            )
            if stored >= len(published):
                break
            await asyncio.sleep(1.0)
        print(f"\nalerts: {len(published)} published on the alert topics, {stored} in the alert store")
        credit = Counter(r.key for r in await read_all(settings, settings.topic(contract.ALERTS_CREDIT)))
        print(
            f"  alerts.credit: {sum(credit.values())} publications for {len(credit)} alerts, "
            f"at most {max(credit.values(), default=0)} for one"
        )
        if not stored:
            return
        rows = await conn.fetch(
            """
            SELECT alert_id, kind, severity, status, reason, manager_ids
              FROM alerts
             ORDER BY status = 'resolved',
                      array_position(ARRAY['critical','major','minor','info'], severity), alert_id
            """
        )
    finally:
        await conn.close()
    by_manager: dict[str, list[Any]] = {}
    for row in rows:
        for manager in row["manager_ids"] or ["(no manager)"]:
            by_manager.setdefault(manager, []).append(row)

    def still_open(items: list[Any]) -> int:
        return sum(1 for row in items if row["status"] != "resolved")

    busiest = sorted(by_manager, key=lambda m: (-still_open(by_manager[m]), m))
    for manager in busiest[:4]:
        items = by_manager[manager]
        print(f"  manager {manager}: {still_open(items)} open of {len(items)} alerts")
        for row in items[:4]:
            print(f"    [{row['severity']:<8}] {row['status']:<9} {row['alert_id']}: {row['reason']}")
    if len(busiest) > 4:
        print(f"  ... and {len(by_manager) - 4} more managers")


async def _show_redis(settings: Settings, customer_id: str | None) -> None:
    if customer_id is None:
        return
    client = aioredis.from_url(settings.redis_url)
    try:
        key = f"{settings.topic_prefix}gp:stats:{customer_id}"
        raw = await client.hget(key, "doc")
        if raw is None:
            print(f"\nRedis {key}: (not there yet)")
            return
        doc = orjson.loads(raw)
        month, arrears = doc["month"], doc["arrears"]
        print(
            f"\nRedis lookup HGET {key} doc: period {month['period']}, "
            f"kWh {month['kwh']:,.1f}, PF {_fmt(month['power_factor'], 3)}, "
            f"outstanding {arrears['outstanding']:,.2f} CNY"
        )
    finally:
        await client.aclose()


async def _delete_internal_topics(settings: Settings) -> None:
    """Faust's changelog topics of the demo app, so a rerun does not restore old state."""
    await delete_topics_with_prefix(settings, f"{settings.app_id}-")
