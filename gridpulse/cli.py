"""The ``gridpulse`` console script.

gridpulse worker               run the stream worker (Faust) against GRIDPULSE_KAFKA_BOOTSTRAP
gridpulse topics create        create every CONTRACT.md topic (idempotent)
gridpulse simulate ...         a simulated meter head-end, billing and grid operations
gridpulse demo                 stack-to-screen walk-through on its own topics (make demo)
gridpulse alerts-consumer      store alerts.credit/alerts.outage in PostgreSQL, notify managers
gridpulse alerts ack ID -m M   a manager acknowledges an alert (no re-notification)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from gridpulse.settings import Settings, get_settings


def make_worker(app: Any, loglevel: str, logfile: str | None) -> Any:
    """faust's Worker for ``app``, without its start-up spinner.

    With a log level of warning or above faust keeps the spinner, and to spin it on every log
    record it sets the root logger to DEBUG (faust/worker.py, _setup_spinner_handler): every
    ``logger.debug`` in faust, mode and aiokafka then built a record on the hot path (one per
    message sent: 4 % of a worker's CPU). Without the spinner the root logger has the level asked.
    """
    from faust import Worker

    worker = Worker(app, loglevel=loglevel, logfile=logfile, quiet=True)
    worker.spinner = None
    return worker


def _cmd_worker(args: argparse.Namespace) -> int:
    import mode.loop

    from streams.app import tune_gc
    from streams.worker import create_worker

    # the event loop policy before anything makes a loop (faust's own `-L uvloop` does this):
    # uvloop's loop runs faust's per-message tasks and callbacks in less CPU (bench/RESULTS.md)
    if args.loop != "asyncio":
        mode.loop.use(args.loop)
    settings = get_settings()
    app = create_worker(settings).app
    tune_gc(settings.gc_gen0_threshold)
    worker = make_worker(app, args.loglevel, args.logfile)
    worker.execute_from_commandline()  # blocks; exits the process on SIGTERM/SIGINT
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from streams.kafka import TopicAdminError, create_contract_topics

    settings = get_settings()
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
    n = asyncio.run(publish_history(get_settings(), rows))
    print(f"published {n} customer-months to consumption.history")
    return 0


def _cmd_scores_explain(args: argparse.Namespace) -> int:
    import json

    from gridpulse.explain import explain_customer

    try:
        explanation = asyncio.run(explain_customer(get_settings(), args.customer_id))
    except KeyError as exc:
        print(f"gridpulse scores: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(explanation, indent=2, ensure_ascii=False))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gridpulse.demo import run_demo

    return asyncio.run(run_demo(get_settings(), customers=args.customers, days=args.days))


def _cmd_alerts_consumer(args: argparse.Namespace) -> int:
    import signal

    from alerts.consumer import AlertsConsumer

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
        conn = await asyncpg.connect(get_settings().pg_dsn.get_secret_value())
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

    demo = sub.add_parser("demo", help="run worker + simulated head-end on demo topics and show results")
    demo.add_argument("--customers", type=int, default=40)
    demo.add_argument("--days", type=float, default=2.0)
    demo.set_defaults(func=_cmd_demo)

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

    try:
        from simulator.cli import add_parser as add_simulate
    except ImportError:  # the simulator package is optional in slim deployments
        pass
    else:
        add_simulate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # client chatter, not our news
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def settings_summary(s: Settings) -> str:
    return f"kafka={s.kafka_bootstrap} redis={s.redis_url} tz={s.timezone} partitions={s.topic_partitions}"


if __name__ == "__main__":
    sys.exit(main())
