"""Replay of the UCI household data as one customer. The data file comes from the ``uci_path``
fixture (tests/conftest.py): ``$GRIDPULSE_SHARED_DATA``, default ../shared/data beside the
checkout; the tests that need it skip without it (and fail in CI)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulator.replay import ReplayDataMissing, read_uci, replay_readings


def _minute_sums(path: Path) -> tuple[float, float, int]:
    kw = kvar = 0.0
    n = 0
    with path.open(newline="") as f:
        rows = csv.DictReader(f, delimiter=";")
        for row in rows:
            a = row["Global_active_power"].strip('"')
            if a == "?":
                continue
            kw += float(a)
            kvar += float(row["Global_reactive_power"].strip('"'))
            n += 1
    return kw, kvar, n


def test_two_days_make_192_intervals_and_keep_the_energy(uci_path: Path):
    readings = replay_readings(uci_path)
    assert len(readings) == 192
    kw, kvar, n = _minute_sums(uci_path)
    assert n == 2880
    assert sum(r["kwh"] for r in readings) == pytest.approx(kw / 60, abs=1e-9)
    assert sum(r["kvarh"] for r in readings) == pytest.approx(kvar / 60, abs=1e-9)
    assert all(r["quality"] == [] for r in readings)


def test_timestamps_are_paris_interval_ends(uci_path: Path):
    readings = replay_readings(uci_path)
    assert readings[0]["ts"] == "2007-02-01T00:15:00+01:00"
    assert readings[-1]["ts"] == "2007-02-03T00:00:00+01:00"
    first = read_uci(uci_path)
    # the first interval holds minutes 00:00..00:14
    assert readings[0]["kwh"] == pytest.approx(first.kw[:15].sum() / 60, abs=1e-12)
    assert readings[0]["demand_kw"] == pytest.approx(first.kw[:15].max())
    assert all(r["demand_kw"] >= r["kwh"] * 4 - 1e-9 for r in readings)


def test_shift_to_a_chosen_start(uci_path: Path):
    start = datetime(2026, 3, 2, 0, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
    readings = replay_readings(uci_path, start=start)
    first = datetime.fromisoformat(readings[0]["ts"])
    assert first.timestamp() == datetime(2026, 3, 2, 0, 15, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert len(readings) == 192
    assert readings[0]["kwh"] == replay_readings(uci_path)[0]["kwh"]


def test_missing_minutes_are_estimated_or_dropped(uci_path: Path, tmp_path: Path):
    lines = uci_path.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    broken = list(rows)
    for k in range(3):  # interval 0: 12 of 15 minutes present -> estimated
        broken[k] = broken[k].replace(broken[k].split(";")[2], "?", 1)
    for k in range(15, 25):  # interval 1: 5 present -> dropped
        broken[k] = broken[k].replace(broken[k].split(";")[2], "?", 1)
    path = tmp_path / "uci.txt"
    path.write_text("\n".join([header, *broken]) + "\n")
    readings = replay_readings(path)
    assert len(readings) == 191
    assert readings[0]["quality"] == ["estimated"]
    present = read_uci(path).kw[3:15]
    assert readings[0]["kwh"] == pytest.approx(present.sum() / 60 * 15 / 12)
    assert readings[1]["ts"] == "2007-02-01T00:45:00+01:00"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReplayDataMissing, match="not found at"):
        replay_readings(tmp_path / "nope.txt")


def test_replay_rides_along_in_the_simulated_stream(uci_path: Path):
    from schemas import topics
    from simulator.run import Simulation, SimulationOptions, summarize

    start = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    sim = Simulation(
        SimulationOptions(
            customers=5, days=1, start=start, replay_uci=True, uci_path=str(uci_path), bad_share=0
        )
    )
    assert len(sim.replay) == 96  # cut at the simulated end
    summary = summarize(sim)
    assert summary.customers == 6
    assert summary.outcomes[topics.METER_READINGS]["valid"] == 6 * 96
