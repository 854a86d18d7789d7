"""The readings agent's batch window (streams.agents.readings.BatchWindow): short while the
worker is caught up, long while the consumer's high-water marks say it is behind."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from streams.agents.readings import BatchWindow

T0, T1 = TP("meter.readings", 0), TP("meter.readings", 1)


class Highwaters:
    """What faust's consumer knows from its fetches: the next offset of each partition."""

    def __init__(self, marks: dict[TP, int]) -> None:
        self.marks = marks

    def highwater(self, tp: TP) -> int:
        return self.marks[tp]  # KeyError: never fetched


def events(*at: tuple[TP, int]) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset)) for tp, offset in at]


def window(marks: dict[TP, int]) -> BatchWindow:
    app = faust.App("window-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.consumer = Highwaters(marks)  # type: ignore[assignment]
    return BatchWindow(app, short_s=0.05, long_s=2.0, behind=1000)


def test_caught_up_the_window_is_short() -> None:
    w = window({T0: 500, T1: 800})
    assert w.seconds() == 0.05  # before any batch: nothing known to be behind
    w.observe(events((T0, 498), (T0, 499), (T1, 790)))
    assert w.lag == 0 + 9 and w.seconds() == 0.05


def test_behind_on_the_partitions_of_the_batch_the_window_is_long() -> None:
    w = window({T0: 5000, T1: 800})
    w.observe(events((T0, 3000), (T0, 3999), (T1, 700)))  # the newest offset of each counts
    assert w.lag == (5000 - 4000) + (800 - 701) and w.seconds() == 2.0
    w.observe(events((T0, 4999)))  # caught up again
    assert w.lag == 0 and w.seconds() == 0.05


def test_a_partition_never_fetched_counts_as_not_behind() -> None:
    w = window({T1: 10_000})
    w.observe(events((T0, 5)))
    assert w.lag == 0 and w.seconds() == 0.05
    w.observe(events((T0, 5), (T1, 10)))
    assert w.lag == 10_000 - 11 and w.seconds() == 2.0


def test_the_long_window_is_never_shorter_than_the_short_one() -> None:
    app = faust.App("window-test-2", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.consumer = Highwaters({T0: 10**6})  # type: ignore[assignment]
    w = BatchWindow(app, short_s=0.5, long_s=0.1, behind=1)
    w.observe(events((T0, 0)))
    assert w.seconds() == 0.5
