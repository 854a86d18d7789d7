"""`LoadState.snapshot` publishes exactly what the full slice-by-slice recomputation gives.

The hour-of-day profile is summed with numpy over wide windows (`_Buckets.hourly`); its float
additions must be the very ones of the original slice sums, so these tests compare the whole
snapshot, bit for bit (orjson of both), with the snapshot computed by the original code (kept
here as `_slice_hourly`), after random sequences of single readings, blocks, late readings,
duplicates, day and month rolls, DST days, jumps, seeded history, compaction and record round
trips, and against the snapshots that the code before the change (5337e1c) published for a
version-3 record it wrote.

(Python 3.11's ``sum`` adds floats one after the other; 3.12 made it compensated, under which
`_slice_hourly` and 5337e1c's numbers would differ from the accumulate in the last bits: these
tests would say so.)
"""

from __future__ import annotations

import base64
import random
import zlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

import metering.load as load_module
from metering.load import LoadState

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def at(text: str, tz: ZoneInfo) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


def _slice_hourly(self: Any, last: int, count: int) -> list[float | None]:
    """`_Buckets.hourly` as it was (5337e1c): one slice sum per hour column, oldest row first."""
    n = self.rows
    lo, hi = max(last - count + 1 - self.first, 0), min(last + 1 - self.first, n)
    if lo >= hi:
        return [None] * self.hours
    hk, hs = self.hk, self.hs
    out: list[float | None] = []
    for base in range(0, self.hours * n, n):
        seconds = sum(hs[base + lo : base + hi])
        out.append(sum(hk[base + lo : base + hi]) * 3600.0 / seconds if seconds else None)
    return out


def full_snapshot(state: LoadState, now: float | None = None, **terms: Any) -> dict[str, Any]:
    """The snapshot computed the original way, slice by slice."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load_module._Buckets, "hourly", _slice_hourly)
        return state.snapshot(now, **terms)


def assert_exact(state: LoadState, now: float | None = None, **terms: Any) -> dict[str, Any]:
    got = state.snapshot(now, **terms)
    want = full_snapshot(state, now, **terms)
    assert got == want
    assert orjson.dumps(got) == orjson.dumps(want)  # every float bit for bit (no -0.0 for 0.0 either)
    return got


# ------------------------------------------------------------------------------- every width


def _state_with_days(days: int, tz: ZoneInfo, seed: int) -> LoadState:
    """``days`` local days of 15-minute readings of kWh of many magnitudes, two meters, some hours
    without readings. (float32 kWh within a range of 2**29 add up exactly in a double, in any
    order: the 11 decades here are wide enough for the order to show.)"""
    rng = random.Random(seed)
    state = LoadState(tz)
    first = at("2026-03-26T00:00", tz)  # Berlin: 23-hour day on 29 March
    for k in range(days * 96):
        batch = [
            {
                "meter_id": meter,
                "ts": first + (k + 1) * 900,
                "interval_s": 900,
                "kwh": rng.choice([0.0, rng.random() * 10.0 ** rng.randint(-6, 5)]),
                "kvarh": rng.random(),
            }
            for meter in ("m1", "m2")
            if rng.random() < 0.9
        ]
        state.apply(batch)
    return state


@pytest.mark.parametrize("days", [*range(1, 8), 29, 30, 31, 35, 40])
@pytest.mark.parametrize("tz", [SHANGHAI, BERLIN], ids=["shanghai", "berlin"])
def test_hourly_profile_of_every_window_width_is_the_slice_sums(days: int, tz: ZoneInfo) -> None:
    state = _state_with_days(days, tz, seed=days)
    snap = assert_exact(state)
    assert any(kw is not None for kw in snap["hourly_kw"])
    # and through the record, as the worker reads it
    assert_exact(LoadState.from_bytes(state.to_bytes(), tz))


def test_the_data_would_show_a_reordered_sum() -> None:
    """The comparison can fail: summed newest first instead, some hour of this state differs."""
    state = _state_with_days(30, SHANGHAI, seed=30)
    days = state._days
    n = days.rows
    reordered = [
        sum(reversed(days.hk[h * n : (h + 1) * n])) != sum(days.hk[h * n : (h + 1) * n]) for h in range(24)
    ]
    assert any(reordered)


# ------------------------------------------------------------------------------- random sequences


def _periods_back(tz: ZoneInfo, end: int, months: int) -> list[str]:
    local = datetime.fromtimestamp(end, tz)
    index = local.year * 12 + local.month - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(index - months + 1, index + 1)]


def _readings(rng: random.Random, meters: list[str], cursor: int, interval: int) -> list[dict[str, Any]]:
    """A batch: new intervals at the cursor, retries (maybe altered), stragglers within the
    lateness and a few beyond it (late)."""
    batch = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.6:
            end = cursor + interval * rng.randint(0, 3)
        elif kind < 0.9:
            end = cursor - interval * rng.randint(0, 46 * 3600 // interval)  # within the lateness
        else:
            end = cursor - interval * rng.randint(48 * 3600 // interval, 60 * 3600 // interval)
        row: dict[str, Any] = {
            "meter_id": rng.choice(meters),
            "ts": end,
            "interval_s": interval,
            "kwh": rng.choice([0.0, rng.random() * 10.0 ** rng.randint(-6, 5)]),
        }
        if rng.random() < 0.7:
            row["kvarh"] = rng.random() * 3
        if rng.random() < 0.2:
            row["kvarh_export"] = rng.random()
        if rng.random() < 0.2:
            row["demand_kw"] = rng.random() * 50
        batch.append(row)
    return batch


def _block(rng: random.Random, state: LoadState, meters: list[str], cursor: int, interval: int) -> None:
    """A meter's curve of up to a day, starting up to 50 hours back (overlapping what it sent)."""
    count = rng.randint(1, 86400 // interval)
    start = cursor - interval * rng.randint(1, 50 * 3600 // interval)
    kwh = [None if rng.random() < 0.1 else rng.random() * 10.0 ** rng.randint(-6, 5) for _ in range(count)]
    kvarh = [rng.random() for _ in range(count)] if rng.random() < 0.5 else None
    state.apply_block(rng.choice(meters), start, interval, kwh, kvarh=kvarh)


_STARTS = ["2026-03-20T00:00", "2026-10-18T00:00", "2026-01-25T06:00", "2026-12-20T00:00"]


@pytest.mark.parametrize("seed", range(24))
def test_random_sequences_publish_the_full_recomputation(seed: int) -> None:
    rng = random.Random(seed)
    tz = [SHANGHAI, BERLIN, UTC][seed % 3]
    interval = rng.choice([900, 1800, 3600])
    meters = [f"m{j}" for j in range(rng.randint(1, 3))]
    cursor = at(rng.choice(_STARTS), tz)  # Berlin's DST days, month and year ends ahead
    state = LoadState(tz)
    terms = {"pf_standard": rng.choice([None, 0.8, 0.85, 0.9]), "tariff_cny_per_kwh": rng.choice([None, 0.6])}
    checked = 0
    for _ in range(160):
        step = rng.random()
        if step < 0.55:
            state.apply(_readings(rng, meters, cursor, interval))
            cursor += interval * rng.randint(1, 6)
        elif step < 0.7:
            _block(rng, state, meters, cursor, interval)
        elif step < 0.76:
            state.seed_history(rng.choice(_periods_back(tz, cursor, 30)), rng.random() * 1000)
        elif step < 0.84:
            state = LoadState.from_bytes(state.to_bytes(), tz)  # as the table stores it
        elif step < 0.88:
            state.compact()
        elif step < 0.96:
            cursor += rng.choice([3600, 86400, 3 * 86400, 12 * 86400])  # a day or a month rolls
        else:
            cursor += rng.choice([31, 40]) * 86400  # every day row falls out of the windows
            if rng.random() < 0.3:
                meters = [*meters[1:], f"n{seed}-{cursor}"]  # a meter replaced
        if state.watermark is None:
            continue
        assert state.data_end is not None
        for now in (state.data_end, state.data_end + rng.randint(1, 40) * 86400):
            assert_exact(state, now, **terms)
        checked += 1
    assert checked > 100


# ------------------------------------------------------------------------------- version 3 records


_V3_RECORD = (  # zlib + base64 of a version-3 record written by 5337e1c's LoadState.to_bytes
    "eNrtVl1oFFcUPpm1Mzc2yKJJuloJaxpN3JjftlLatLnTCk0xxFW0GAl2KEJtamRptfRBZESRSl82EEhpBRdtwYcWFt"
    "qHQqFMwEJIA+5jEIR9kFKpyCIRUXzouXO+2ewstqU+iA+97Md37/m59/zM7Ny3s6OJhHdn4UPikaPfQqZLVkjervlw"
    "/ck7z4ZrxXhwMJxSA8MCKr/OhXYDNbKpganB5BqxjTgcpY90yNlJ4dEpYX1UOHVEOAf9BOypW/jye8Lz48InPKwnhN"
    "Pg0r64PHhBuPAy9tuOc6P1a8JlyMsvCvt9mmqHB7mO9OD0IPzA3gC4vxp/7q0GSQ3s73401+uj+m1FCBlwH7i7Tp6p"
    "k1vgZkYr4zlwC9CMfkbzVI2uBfYSiXK528NETcxjZs65lRnnGft5fZSxmtHGeMiyGaNn+49dieBr5lHGCcZJ7GHGWn"
    "AH8xHGN+yXY7zC8xJzEjXM814jPO9iualrhvkLxhr4L8HnDPMG5pcYKcYed6WBq3h+jPEH22xjzjIvYn8LdhOIc1kj"
    "9jdW4rxl8kWOWxDfDfhnUJO9ONvkZ6MuZky6YmNi+xG1G+T5aehPMV9hWZoxzfNZnLMDes1yD/mbOpk+mHyW9Er9Dj"
    "N8Xl9GXgUtazNMbIdc2T/L/DnOfremD1+hZqbXKeQ2Cb3Jd15LnRRyS7kr+5vzu7TsE3Cvepm3u8JmmD4MMT5FHZvQ"
    "6wL8i1rkJfTW1N+c+Sr8TW0Cxpuu9Mg8W601+7cz/8T6EVdwgHEWfTJjB+Ix+5kamloOoYdmfKcltjzq34ZnSfzNe/"
    "i4+Dv/2vf7cfz/i/6fbP4tjicR3//6p1sv398v5V1pOie8+H71O+i1NYbTXvlY0G3cFe4erPE/BD/rjM6ds8mftSn/"
    "rU2FH2wqztkUXLWpdN2m8p82Ve7b/DfjULLVoXSHQ/2DDv8DOpQdc8ibcPiK4JD/mUP5sw4VZhwqXnQoKDpU+sWh8q"
    "JDlWsO0U32v8f+zyjqX6dIb1KU7VPkva4ot1ORP64o/4GiwnFFxdOKgmlFpQuKyt8rqvzMN54FRcklRenf2X+Z/a1G"
    "yiYbyeSa2yb5Vu8WtBH8cFh4Q/wuQJHdatwhenXMLkhDviV+Z/Ehp+b4ncLfGN83gJ8Pu6AD3A6O/DrB+K766+Lx6P"
    "boewi/TZBnYL8e+mA4FkfQUxdfF+yeB+O8APvonjr55nieujMuj/Kp1qujerdKhKMhgWGFPxFYDQnLSiRqVGb8BVGz"
    "FT4="
)
_V3_RECORD_BYTES = 2810
# 5337e1c's snapshot of that state (orjson), at its data_end and 40 days later
_V3_SNAPSHOTS = (
    (
        b'{"ts":"2026-03-31T01:00:00+02:00","day":{"kwh":13.5,"kvarh":0.0,"avg_kw":13.5,"max_kw":13.'
        b'5,"load_factor":1.0,"power_factor":1.0,"hours":1.0,"intervals":2,"date":"2026-03-31"},"d30'
        b'":{"kwh":1578.0,"kvarh":150.375,"avg_kw":9.506024096385541,"max_kw":19.5,"load_factor":0.4'
        b'874884151992585,"power_factor":0.9828513572928474,"hours":166.0,"intervals":302,"from":"20'
        b'26-03-02","to":"2026-03-31"},"month":{"kwh":1578.0,"kvarh":150.375,"avg_kw":9.506024096385'
        b'541,"max_kw":19.5,"load_factor":0.4874884151992585,"power_factor":0.9828513572928474,"hour'
        b's":166.0,"intervals":302,"period":"2026-03","pf_standard":0.85,"pf_adjustment_pct":-1.1,"p'
        b'f_adjustment_cny":-10.41,"projected_power_factor":0.9827841769504401,"projected_pf_adjustm'
        b'ent_pct":-1.1,"projected_pf_adjustment_cny":-11.85},"consumption":{"2025-03":812.5,"2025-1'
        b'0":640.25,"2026-03":1578.0},"yoy_growth_rate":null,"yoy_growth_kwh":null,"hourly_kw":[8.10'
        b"9375,8.964285714285714,14.291666666666666,7.732142857142857,7.767857142857143,9.4107142857"
        b"14286,8.520833333333334,9.583333333333334,9.982142857142858,11.25,10.714285714285714,11.98"
        b"2142857142858,7.928571428571429,7.053571428571429,12.0,10.071428571428571,7.875,8.08928571"
        b"4285714,9.5,8.517857142857142,8.571428571428571,11.660714285714286,9.642857142857142,9.678"
        b"571428571429]}"
    ),
    (
        b'{"ts":"2026-03-31T01:00:00+02:00","day":{"kwh":13.5,"kvarh":0.0,"avg_kw":13.5,"max_kw":13.'
        b'5,"load_factor":1.0,"power_factor":1.0,"hours":1.0,"intervals":2,"date":"2026-03-31"},"d30'
        b'":{"kwh":1578.0,"kvarh":150.375,"avg_kw":9.506024096385541,"max_kw":19.5,"load_factor":0.4'
        b'874884151992585,"power_factor":0.9828513572928474,"hours":166.0,"intervals":302,"from":"20'
        b'26-03-02","to":"2026-03-31"},"month":{"kwh":1578.0,"kvarh":150.375,"avg_kw":9.506024096385'
        b'541,"max_kw":19.5,"load_factor":0.4874884151992585,"power_factor":0.9828513572928474,"hour'
        b's":166.0,"intervals":302,"period":"2026-03","pf_standard":0.85,"pf_adjustment_pct":-1.1,"p'
        b'f_adjustment_cny":-10.41,"projected_power_factor":null,"projected_pf_adjustment_pct":null,'
        b'"projected_pf_adjustment_cny":null},"consumption":{"2025-03":812.5,"2025-10":640.25,"2026-'
        b'03":1578.0},"yoy_growth_rate":null,"yoy_growth_kwh":null,"hourly_kw":[8.109375,8.964285714'
        b"285714,14.291666666666666,7.732142857142857,7.767857142857143,9.410714285714286,8.52083333"
        b"3333334,9.583333333333334,9.982142857142858,11.25,10.714285714285714,11.982142857142858,7."
        b"928571428571429,7.053571428571429,12.0,10.071428571428571,7.875,8.089285714285714,9.5,8.51"
        b"7857142857142,8.571428571428571,11.660714285714286,9.642857142857142,9.678571428571429]}"
    ),
)


def test_a_version_3_record_decodes_and_publishes_what_it_did() -> None:
    """A record of 5337e1c (before the numpy profile): Europe/Berlin, a week over the DST change,
    two meters, hourly readings, two seeded months. It decodes, encodes back to the same bytes,
    and its snapshots are, bit for bit, the ones 5337e1c published."""
    raw = zlib.decompress(base64.b64decode("".join(_V3_RECORD)))
    assert len(raw) == _V3_RECORD_BYTES and raw[:4] == b"GPL\x03"
    state = LoadState.from_bytes(raw, BERLIN)
    assert state.to_bytes() == raw
    assert state.data_end is not None
    for now, published in zip((state.data_end, state.data_end + 40 * 86400), _V3_SNAPSHOTS, strict=True):
        snap = assert_exact(state, now, pf_standard=0.85, tariff_cny_per_kwh=0.6)
        assert orjson.dumps(snap) == published
    assert state.apply(
        [{"meter_id": "m1", "ts": state.data_end + 3600, "interval_s": 3600, "kwh": 1.0}]
    ).statuses == ["applied"]
