"""`gridpulse simulate`: produce a simulated head-end, billing and grid-operations stream."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `simulate` subcommand on an argparse subparsers object."""
    from gridpulse.settings import get_settings

    settings = get_settings()
    p = subparsers.add_parser(
        "simulate",
        help="produce simulated readings, billing, outages and customers to Kafka",
        description="Produce a seeded, deterministic simulated stream to the contract topics and "
        "print a JSON summary (counts per topic and per expected outcome).",
    )
    p.add_argument("--customers", type=int, default=200, help="number of customers (default 200)")
    p.add_argument("--days", type=float, default=2.0, help="simulated span in days (default 2)")
    p.add_argument("--rate", type=float, default=0.0, help="readings per second, 0 = as fast as possible")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many wall-clock seconds")
    p.add_argument("--start", type=datetime.fromisoformat, default=None, help="first interval start, "
                   "ISO 8601 with offset (default: the span ends now)")  # fmt: skip
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bad-share", type=float, default=0.02, help="bad readings per valid reading")
    p.add_argument("--duplicate-share", type=float, default=0.01, help="re-sent readings per valid one")
    p.add_argument("--late-share", type=float, default=0.02, help="readings delivered late")
    p.add_argument("--max-lateness", type=int, default=1800, help="seconds a late reading may lag")
    p.add_argument("--history-months", type=int, default=6, help="billing history before the start")
    p.add_argument("--no-billing", action="store_true", help="no billing.events")
    p.add_argument("--no-outages", action="store_true", help="no grid.outages")
    p.add_argument("--replay-uci", action="store_true", help="add the UCI household as one customer")
    p.add_argument("--uci-path", default=None, help="UCI data file (default ../shared/data/...)")
    p.add_argument("--timezone", default=settings.timezone, help="local zone of the head-end")
    p.add_argument("--bootstrap", default=settings.kafka_bootstrap)
    p.add_argument("--topic-prefix", default=settings.topic_prefix)
    p.add_argument("--compression", choices=["lz4", "zstd", "snappy", "gzip"], default=None)
    p.add_argument(
        "--blocks",
        action="store_true",
        help="daily curves in the block form (one block per customer and local day, whole days), "
        "sent as a collection run after local midnight: some meters hours late, some blocks "
        "retried, some days partly missing, some overlapping re-sends",
    )
    p.add_argument(
        "--areas",
        action="store_true",
        help="transformer areas (issue 13, simulator/areas.py): the customers, their meters with the "
        "inspection cases (theft, white screen, tamper, wrong area, holidays) and the areas' summary "
        "meters on area.readings, whole local days (--days 12 or more; daily curves with --blocks, "
        "without partly missing days); late, duplicate and bad shares as above (no bad summary-meter "
        "readings); no billing or outages; the summary lists the cases and their expected alerts",
    )
    p.set_defaults(func=main)
    return p


def options_from_args(args: argparse.Namespace) -> Any:
    from gridpulse.settings import get_settings
    from simulator.run import SimulationOptions

    tz = ZoneInfo(args.timezone)
    start = args.start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    return SimulationOptions(
        bootstrap=args.bootstrap,
        topic_prefix=args.topic_prefix,
        customers=args.customers,
        days=args.days,
        seconds=args.seconds,
        rate=args.rate,
        start=start,
        seed=args.seed,
        bad_share=args.bad_share,
        duplicate_share=args.duplicate_share,
        late_share=args.late_share,
        max_lateness_s=args.max_lateness,
        billing=not args.no_billing,
        billing_history_months=args.history_months,
        outages=not args.no_outages,
        replay_uci=args.replay_uci,
        uci_path=args.uci_path,
        tz=tz,
        compression=args.compression,
        blocks=args.blocks,
        kafka_security=get_settings().aiokafka_security(),
    )


def main(args: argparse.Namespace) -> int:
    from gridpulse.cli import kafka_preflight
    from gridpulse.settings import get_settings
    from simulator.area_run import run_area_simulation
    from simulator.replay import ReplayDataMissing
    from simulator.run import run_simulation

    # the broker's answer to these credentials first: refused, one clear line and exit 78 (the
    # producer alone would retry its connection without a word)
    settings = get_settings().model_copy(update={"kafka_bootstrap": args.bootstrap})
    if (refused := kafka_preflight("simulate", settings)) is not None:
        return refused
    try:
        if getattr(args, "areas", False):
            summary = asyncio.run(run_area_simulation(options_from_args(args)))
        else:
            summary = asyncio.run(run_simulation(options_from_args(args))).to_dict()
    except (ReplayDataMissing, ValueError) as e:
        print(f"gridpulse simulate: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":  # python -m simulator.cli ...
    parser = argparse.ArgumentParser(prog="gridpulse")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args()
    raise SystemExit(ns.func(ns))
