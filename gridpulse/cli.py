"""The ``gridpulse`` console script.

gridpulse worker               run the stream worker (Faust) against GRIDPULSE_KAFKA_BOOTSTRAP
gridpulse topics create        create every CONTRACT.md topic (idempotent)
gridpulse simulate ...         a simulated meter head-end, billing and grid operations
gridpulse demo                 stack-to-screen walk-through on its own topics (make demo)
gridpulse alerts-consumer      store alerts.credit/.outage/.inspection in PostgreSQL, notify managers
gridpulse alerts list ...      the stored alerts (a manager's, a customer's, an area's; open ones)
gridpulse alerts ack ID -m M   a manager acknowledges an alert (no re-notification)
gridpulse inspection explain C why a customer is suspected: its area's loss beside its consumption
gridpulse dashboard            the web dashboard (GRIDPULSE_DASHBOARD_*; README "Dashboard")
gridpulse dashboard hash-password   a password hash for the dashboard's users (password on stdin)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gridpulse.settings import Settings, get_settings
from observability.logs import LogFormat, configure


def make_worker(app: Any, loglevel: str, logfile: str | None, log_format: LogFormat = "text") -> Any:
    """faust's Worker for ``app``, without its start-up spinner, logging in ``log_format``
    (json: observability.logs; faust's Worker replaces the root logger's handlers at its start).

    With a log level of warning or above faust keeps the spinner, and to spin it on every log
    record it sets the root logger to DEBUG (faust/worker.py, _setup_spinner_handler): every
    ``logger.debug`` in faust, mode and aiokafka then built a record on the hot path (one per
    message sent: 4 % of a worker's CPU). Without the spinner the root logger has the level asked.
    """
    from faust import Worker

    from observability.logs import worker_logging_config

    logging_config = worker_logging_config(log_format, loglevel, logfile)
    worker = Worker(app, loglevel=loglevel, logfile=logfile, quiet=True, logging_config=logging_config)
    worker.spinner = None
    return worker


def kafka_preflight(command: str, settings: Settings) -> int | None:
    """streams.kafka.check_broker before a command's Kafka clients start: None when the broker
    took this client (or did not answer: each service waits its own way), else the exit status
    after one clear line on stderr (refused credentials, an untrusted certificate, an unreadable
    secret file; never a password)."""
    from gridpulse.settings import SecretFileError
    from streams.kafka import EXIT_KAFKA_ACCESS, KafkaAccessError, check_broker

    try:
        asyncio.run(check_broker(settings))
    except (KafkaAccessError, SecretFileError) as exc:
        print(f"gridpulse {command}: Kafka refused this client: {exc}", file=sys.stderr)
        return EXIT_KAFKA_ACCESS
    return None


def _cmd_worker(args: argparse.Namespace) -> int:
    import mode.loop

    from streams.app import tune_gc
    from streams.worker import create_worker

    # the event loop policy before anything makes a loop (faust's own `-L uvloop` does this):
    # uvloop's loop runs faust's per-message tasks and callbacks in less CPU (bench/RESULTS.md)
    if args.loop != "asyncio":
        mode.loop.use(args.loop)
    settings = get_settings()
    if (refused := kafka_preflight("worker", settings)) is not None:
        return refused
    # the stage's repartition topic before the consumer subscribes (streams.kafka.create_internal_topics)
    from streams.kafka import TopicAdminError, create_internal_topics

    try:
        asyncio.run(create_internal_topics(settings))
    except TopicAdminError as exc:
        print(f"gridpulse worker: {exc}", file=sys.stderr)
        return 1
    app = create_worker(settings).app
    tune_gc(settings.gc_gen0_threshold)
    worker = make_worker(app, args.loglevel, args.logfile, settings.log_format)
    worker.execute_from_commandline()  # blocks; exits the process on SIGTERM/SIGINT
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from streams.kafka import TopicAdminError, create_contract_topics

    settings = get_settings()
    if (refused := kafka_preflight("topics", settings)) is not None:
        return refused
    try:
        outcome = asyncio.run(create_contract_topics(settings, args.partitions))
    except TopicAdminError as exc:
        print(f"gridpulse topics: {exc}", file=sys.stderr)
        return 1
    for name, what in sorted(outcome.items()):
        print(f"{what:8s} {name}")
    return 0


def _cmd_history_load(args: argparse.Namespace) -> int:
    from gridpulse.history import HistoryFileError, publish_history, read_history

    try:
        rows = read_history(Path(args.file))
    except (HistoryFileError, OSError) as exc:
        print(f"gridpulse history: {exc}", file=sys.stderr)
        return 1
    if (refused := kafka_preflight("history", get_settings())) is not None:
        return refused
    n = asyncio.run(publish_history(get_settings(), rows))
    print(f"published {n} customer-months to consumption.history")
    return 0


def _cmd_scores_explain(args: argparse.Namespace) -> int:
    import json

    from gridpulse.explain import explain_customer

    if (refused := kafka_preflight("scores", get_settings())) is not None:
        return refused
    try:
        explanation = asyncio.run(explain_customer(get_settings(), args.customer_id))
    except KeyError as exc:
        print(f"gridpulse scores: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(explanation, indent=2, ensure_ascii=False))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gridpulse.demo import run_demo

    keep = not (args.exit or os.environ.get("GRIDPULSE_DEMO_EXIT", "").lower() in ("1", "true", "yes"))

    async def demo() -> int:
        # SIGTERM and SIGHUP (a closed terminal, `timeout`, a process manager) end the demo as
        # Ctrl-C does: its worker, alerts consumer and dashboard are stopped, not orphaned
        import signal

        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        return await run_demo(get_settings(), customers=args.customers, days=args.days, keep_serving=keep)

    try:
        return asyncio.run(demo())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


def _cmd_alerts_consumer(args: argparse.Namespace) -> int:
    import signal

    from alerts.consumer import AlertsConsumer

    if (refused := kafka_preflight("alerts-consumer", get_settings())) is not None:
        return refused

    async def run() -> None:
        consumer = AlertsConsumer(get_settings())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, consumer.stop)
        await consumer.run()

    asyncio.run(run())
    return 0


def _cmd_alerts_ack(args: argparse.Namespace) -> int:
    import asyncpg

    from alerts.store import acknowledge, migrate

    async def ack() -> bool:
        conn = await asyncpg.connect(get_settings().pg_connect_dsn())
        try:
            await migrate(conn)
            return await acknowledge(conn, args.alert_id, args.manager)
        finally:
            await conn.close()

    try:
        done = asyncio.run(ack())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"gridpulse alerts ack: alert store unavailable: {exc!r}", file=sys.stderr)
        return 2
    if not done:
        print(f"{args.alert_id}: no such alert, or already acknowledged at its severity", file=sys.stderr)
        return 1
    print(f"acknowledged {args.alert_id} by {args.manager}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    if getattr(args, "dashboard_command", None) == "hash-password":
        return _cmd_dashboard_hash_password(args)
    import uvicorn

    from dashboard.app import create_app
    from dashboard.auth import UsersError
    from observability.logs import logging_config

    settings = get_settings()
    if (refused := kafka_preflight("dashboard", settings)) is not None:
        return refused
    try:
        app = create_app(settings)
    except UsersError as exc:
        print(f"gridpulse dashboard: {exc}", file=sys.stderr)
        return 1
    if not app.state.dashboard.users:
        print(
            "gridpulse dashboard: no users configured (GRIDPULSE_DASHBOARD_USERS or "
            "GRIDPULSE_DASHBOARD_USERS_FILE): nobody can sign in",
            file=sys.stderr,
        )
    host = args.host or settings.dashboard_host
    port = settings.dashboard_port if args.port is None else args.port
    # uvicorn's own config writes text lines on its own handlers; json: the root logger's
    log_config = (
        logging_config(settings.log_format, "dashboard", args.loglevel)
        if settings.log_format == "json"
        else uvicorn.config.LOGGING_CONFIG
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=args.loglevel,
        access_log=args.access_log,
        log_config=log_config,
    )
    return 0


def _cmd_dashboard_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from dashboard.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("gridpulse dashboard hash-password: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("gridpulse dashboard hash-password: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def format_alert_line(row: Mapping[str, Any]) -> str:
    """One stored alert as a line: event time, status/severity (``ack`` when acknowledged at
    it), alert id, managers, reason; an area alert adds its top suspects. Never a name: alerts
    carry ids only."""
    state = f"{row['status']}/{row['severity']}"
    if row.get("acknowledged_severity") == row["severity"] and row.get("acknowledged_at") is not None:
        state += " ack"
    managers = ",".join(row.get("manager_ids") or []) or "-"
    line = f"{row['last_ts'].isoformat()}  {state:<18} {row['alert_id']}  [{managers}]  {row['reason']}"
    payload = row.get("payload")
    suspects = (payload or {}).get("suspects") if isinstance(payload, dict) else None
    if suspects:
        top = ", ".join(f"{s['customer_id']} {float(s['score']):.2f}" for s in suspects[:3])
        line += f"  suspects: {top}"
    return line


def _cmd_alerts_list(args: argparse.Namespace) -> int:
    import json

    import asyncpg

    from alerts.store import list_alerts, migrate

    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(get_settings().pg_connect_dsn())
        try:
            await migrate(conn)
            rows = await list_alerts(
                conn,
                manager_id=args.manager,
                kind=args.kind,
                customer_id=args.customer,
                transformer_area=args.area,
                include_resolved=args.all,
                limit=args.limit,
            )
        finally:
            await conn.close()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    try:
        rows = asyncio.run(fetch())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"gridpulse alerts list: alert store unavailable: {exc!r}", file=sys.stderr)
        return 2
    for row in rows:
        if args.json:
            print(json.dumps(row["payload"], ensure_ascii=False))
        else:
            print(format_alert_line(row))
    return 0


def _cmd_inspection_explain(args: argparse.Namespace) -> int:
    import json

    from gridpulse.explain import explain_suspect, format_suspect_explanation

    if (refused := kafka_preflight("inspection explain", get_settings())) is not None:
        return refused
    try:
        explanation = asyncio.run(explain_suspect(get_settings(), args.customer_id))
    except KeyError as exc:
        print(f"gridpulse inspection explain: {exc.args[0]}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(explanation, indent=2, ensure_ascii=False))
    else:
        print(format_suspect_explanation(explanation))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridpulse", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run the stream worker")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument("--logfile", default=None)
    worker.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (default uvloop)"
    )
    worker.set_defaults(func=_cmd_worker)

    topics = sub.add_parser("topics", help="manage the contract topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    create = topics_sub.add_parser("create", help="create every CONTRACT.md topic (idempotent)")
    create.add_argument("--partitions", type=int, default=None, help="default GRIDPULSE_TOPIC_PARTITIONS")
    create.set_defaults(func=_cmd_topics)

    history = sub.add_parser("history", help="past monthly consumption (year-over-year growth)")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    load = history_sub.add_parser("load", help="publish a CSV (customer_id,period,kwh[,source])")
    load.add_argument("file")
    load.set_defaults(func=_cmd_history_load)

    scores = sub.add_parser("scores", help="customer value scores")
    scores_sub = scores.add_subparsers(dest="scores_command", required=True)
    explain = scores_sub.add_parser(
        "explain", help="why a customer has its scores (indicators, weights, credit)"
    )
    explain.add_argument("customer_id")
    explain.set_defaults(func=_cmd_scores_explain)

    inspection = sub.add_parser("inspection", help="line loss and theft screening (issue 13)")
    inspection_sub = inspection.add_subparsers(dest="inspection_command", required=True)
    suspect = inspection_sub.add_parser(
        "explain",
        help="why a customer is suspected: its area's daily loss beside its own daily kWh, the "
        "suspect score's parts, its inspection alerts",
    )
    suspect.add_argument("customer_id")
    suspect.add_argument("--json", action="store_true", help="the explanation as JSON")
    suspect.set_defaults(func=_cmd_inspection_explain)

    demo = sub.add_parser("demo", help="run worker + simulated head-end on demo topics and show results")
    demo.add_argument("--customers", type=int, default=40)
    demo.add_argument("--days", type=float, default=2.0)
    demo.add_argument(
        "--exit",
        action="store_true",
        help="stop once the results are printed instead of serving the dashboard until Ctrl-C "
        "(also GRIDPULSE_DEMO_EXIT=1)",
    )
    demo.set_defaults(func=_cmd_demo)

    dash = sub.add_parser("dashboard", help="the web dashboard (its own process; GRIDPULSE_DASHBOARD_*)")
    dash.add_argument("--host", default=None, help="default GRIDPULSE_DASHBOARD_HOST (127.0.0.1)")
    dash.add_argument("--port", type=int, default=None, help="default GRIDPULSE_DASHBOARD_PORT (8080)")
    dash.add_argument("--loglevel", default="info")
    dash.add_argument(
        "--access-log", action="store_true", help="log every request (paths carry customer ids)"
    )
    dash.set_defaults(func=_cmd_dashboard)
    dash_sub = dash.add_subparsers(dest="dashboard_command", required=False)
    dash_sub.add_parser(
        "hash-password", help="print a password hash for GRIDPULSE_DASHBOARD_USERS (password from stdin)"
    ).set_defaults(func=_cmd_dashboard)

    consumer = sub.add_parser(
        "alerts-consumer", help="store alert messages in PostgreSQL and notify customer managers"
    )
    consumer.set_defaults(func=_cmd_alerts_consumer)

    alerts = sub.add_parser("alerts", help="the alert store")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    ack = alerts_sub.add_parser("ack", help="acknowledge an alert: no re-notification unless it gets worse")
    ack.add_argument("alert_id")
    ack.add_argument("--manager", "-m", required=True, help="the acknowledging manager's id")
    ack.set_defaults(func=_cmd_alerts_ack)
    listing = alerts_sub.add_parser("list", help="stored alerts, latest first (open ones unless --all)")
    listing.add_argument("--manager", "-m", default=None, help="a manager's alerts")
    listing.add_argument("--kind", choices=("credit", "outage", "inspection"), default=None)
    listing.add_argument(
        "--customer", default=None, help="a customer's alerts, and the area alerts listing it as a suspect"
    )
    listing.add_argument("--area", default=None, help="a transformer area's alerts")
    listing.add_argument("--all", action="store_true", help="resolved alerts too")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="the stored alert messages, one JSON a line")
    listing.set_defaults(func=_cmd_alerts_list)

    try:
        from simulator.cli import add_parser as add_simulate
    except ImportError:  # the simulator package is optional in slim deployments
        pass
    else:
        add_simulate(sub)
    return parser


def _log_format() -> LogFormat:
    from pydantic import ValidationError

    try:
        return get_settings().log_format
    except ValidationError:  # the command itself reports the bad settings, in text
        return "text"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # every subcommand's lines in the settings' log_format, service = the subcommand (the worker's
    # faust Worker sets them up again at its start, the dashboard's uvicorn too; same format)
    configure(_log_format(), args.command)
    return int(args.func(args) or 0)


def settings_summary(s: Settings) -> str:
    """One line of settings for logs: no secret (passwords in URLs masked, files by path only)."""
    sasl = f"/{s.kafka_sasl_mechanism} user={s.kafka_sasl_username!r}" if s.kafka_sasl_mechanism else ""
    return (
        f"kafka={s.kafka_bootstrap} kafka_security={s.kafka_security_protocol}{sasl}"
        f" redis={s.redis_url_display()} pg={s.pg_dsn_display()} tz={s.timezone}"
        f" partitions={s.topic_partitions}"
    )


if __name__ == "__main__":
    sys.exit(main())
