"""`gridpulse history load FILE.csv`: publish past monthly consumption to consumption.history.

The CSV has a header with at least ``customer_id,period,kwh`` (``source`` optional), one row
per customer and billing month, as a CIS export gives it. Every row is validated before any is
sent; a bad row stops the load with its line number, so a file is loaded whole or not at all.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from pydantic import ValidationError

from gridpulse.settings import Settings
from schemas.codec import encode
from schemas.models import ConsumptionHistory
from schemas.topics import CONSUMPTION_HISTORY
from streams.kafka import make_producer


class HistoryFileError(ValueError):
    pass


def read_history(path: Path) -> list[ConsumptionHistory]:
    rows: list[ConsumptionHistory] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"customer_id", "period", "kwh"} - set(reader.fieldnames or ())
        if missing:
            raise HistoryFileError(f"{path}: header lacks {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                kwh = float(row["kwh"])
                rows.append(
                    ConsumptionHistory(
                        customer_id=row["customer_id"],
                        period=row["period"],
                        kwh=kwh,
                        source=row.get("source") or path.name,
                    )
                )
            except (ValueError, ValidationError) as exc:
                raise HistoryFileError(f"{path}:{line}: {exc}") from None
    return rows


async def publish_history(settings: Settings, rows: list[ConsumptionHistory]) -> int:
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = settings.topic(CONSUMPTION_HISTORY)
        futures = [await producer.send(topic, key=r.customer_id.encode(), value=encode(r)) for r in rows]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(rows)
