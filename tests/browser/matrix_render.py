"""Time to first full value-matrix render (issue 14's performance figure), in Debian's headless
Chromium against a real ``gridpulse dashboard`` on the local stack:

    .venv/bin/python -m tests.browser.matrix_render --customers 100000 --runs 5

Puts ``--customers`` statistics and scores (the real scoring model) on topics of its own, starts
the dashboard, waits until /api/matrix holds them all, then opens /matrix ``--runs`` times, each
in a new browser context (no cache: a user's first visit), and reads ``window.gpMatrix``:
``firstRenderMs`` (navigation start to the chart's first ``finished`` with every point),
``fetchMs`` (/api/matrix) and ``renderMs`` (columns to series, setOption, drawn). Then one score
is published and the time until the open page has redrawn it is taken. Prints a summary and
writes it as JSON (``--out``). Deletes its topics at the end. Not a test: a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.machine import CHROMIUM, CHROMIUM_ARGS
from dashboard.auth import hash_password
from gridpulse.settings import Settings
from schemas import topics as contract
from scoring import run_population
from streams.kafka import create_contract_topics, delete_topics, make_producer
from tests.browser.harness import GRIDPULSE, REPO, VIEWPORT, LoopThread, free_port
from tests.scoring_samples import simulated_stats


async def _produce(settings: Settings, messages: list[tuple[str, str, bytes]]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = [await producer.send(settings.topic(t), key=k.encode(), value=v) for t, k, v in messages]
        for fut in sent:
            await fut
    finally:
        await producer.stop()


def _wait_all(url: str, password: str, n: int, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    started = time.monotonic()
    client: httpx.Client | None = None
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"gridpulse dashboard exited {proc.returncode}")
        try:
            if client is None:
                client = httpx.Client(base_url=url, timeout=30.0)
                client.post("/api/login", json={"user": "bench", "password": password}).raise_for_status()
            m = client.get("/api/matrix").json()
            if len(m["ids"]) == n and sum(k is not None for k in m["kwh30"]) == n:
                client.close()
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError):
            client = None
        time.sleep(1.0)
    raise RuntimeError(f"the dashboard did not hold {n} customers within {timeout_s} s")


def measure(customers: int, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    stats, profiles = simulated_stats(customers, seed=7)
    scores = run_population(stats, profiles).documents
    io = LoopThread()
    tag = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(update={"topic_prefix": f"mrender{tag}.", "app_id": f"mrender-{tag}"})
    topics = io.run(create_contract_topics(settings, partitions=4))
    proc: subprocess.Popen[bytes] | None = None
    try:
        messages = [(contract.STATS_CUSTOMER, d["customer_id"], orjson.dumps(d)) for d in stats]
        messages += [(contract.SCORES_CUSTOMER, d["customer_id"], orjson.dumps(d)) for d in scores]
        io.run(_produce(settings, messages), timeout=900)
        password = secrets.token_urlsafe(12)
        port = free_port()
        env = {
            **os.environ,
            "GRIDPULSE_TOPIC_PREFIX": settings.topic_prefix,
            "GRIDPULSE_APP_ID": settings.app_id,
            "GRIDPULSE_DASHBOARD_USERS": orjson.dumps(
                [{"user": "bench", "password_hash": hash_password(password), "role": "viewer"}]
            ).decode(),
        }
        proc = subprocess.Popen(
            [str(GRIDPULSE), "dashboard", "--port", str(port), "--loglevel", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        url = f"http://127.0.0.1:{port}"
        loaded_s = _wait_all(url, password, customers, proc, timeout_s=600)
        samples: list[dict[str, float]] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            for k in range(runs):
                context = browser.new_context(viewport=VIEWPORT)  # no cache: a first visit
                context.request.post(f"{url}/api/login", data={"user": "bench", "password": password})
                page = context.new_page()
                page.goto(f"{url}/matrix")
                page.wait_for_function("window.gpMatrix && window.gpMatrix.draws >= 1", timeout=120_000)
                m = page.evaluate("window.gpMatrix")
                if m["points"] != customers:
                    raise RuntimeError(f"the chart drew {m['points']} points of {customers}")
                samples.append({k: m[k] for k in ("firstRenderMs", "fetchMs", "buildMs", "renderMs")})
                print(f"run {k + 1}: {samples[-1]}", file=sys.stderr)
                if k < runs - 1:
                    context.close()
            # one score moved: from publication to the open page's redraw
            doc = dict(
                scores[0], ts="2999-01-01T00:00:00+00:00", current_value=scores[0]["current_value"] + 0.5
            )
            draws = page.evaluate("window.gpMatrix.draws")
            sent = time.monotonic()
            io.run(_produce(settings, [(contract.SCORES_CUSTOMER, doc["customer_id"], orjson.dumps(doc))]))
            page.wait_for_function(f"window.gpMatrix.draws > {draws}", timeout=30_000)
            live_s = time.monotonic() - sent
            redraw_ms = page.evaluate("window.gpMatrix.renderMs")
            browser.close()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        io.run(delete_topics(settings, list(topics)))
        io.close()

    def summary(key: str) -> dict[str, float]:
        values = [s[key] for s in samples]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "customers": customers,
        "runs": runs,
        "first_full_render_ms": summary("firstRenderMs"),
        "fetch_ms": summary("fetchMs"),
        "render_ms": summary("renderMs"),
        "dashboard_loaded_s": round(loaded_s, 1),
        "live_update_visible_s": round(live_s, 2),
        "live_redraw_ms": redraw_ms,
        "load_average": os.getloadavg(),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "matrix_render.json")
    args = ap.parse_args(argv)
    result = measure(args.customers, args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    f = result["first_full_render_ms"]
    print(
        f"value matrix, {args.customers} customers: first full render median {f['median']:.0f} ms "
        f"(min {f['min']:.0f}, max {f['max']:.0f}; /api/matrix {result['fetch_ms']['median']:.0f} ms, "
        f"drawing {result['render_ms']['median']:.0f} ms); a published score redrawn after "
        f"{result['live_update_visible_s']} s; load average {result['load_average'][0]:.1f} ({args.out})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
