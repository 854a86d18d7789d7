"""The framework's own ceiling: a Faust agent that only decodes each reading (orjson) in
batches with ``take_events``, exactly like the pipeline's agent but with no work. Whatever
gridpulse's agent does, it cannot beat this on the same broker and machine.

Run by bench/run.py as a worker process:
    GP_FLOOR_TOPIC=... GP_FLOOR_N=... GP_FLOOR_OUT=... GP_FLOOR_DATA=... \\
        python -m bench.faust_floor worker -l info

It writes its rate and CPU time over the same span (`bench.proc.Rate`) to GP_FLOOR_OUT.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faust
import orjson

from bench.proc import Stopwatch
from gridpulse.settings import get_settings

_s = get_settings()
_topic = os.environ["GP_FLOOR_TOPIC"]
_total = int(os.environ["GP_FLOOR_N"])
_out = Path(os.environ["GP_FLOOR_OUT"])
_data = Path(os.environ["GP_FLOOR_DATA"])  # the app's data directory (bench/run.py: under its run)

app = faust.App(
    os.environ.get("GP_FLOOR_APP", f"gridpulse-floor-{int(time.time())}"),
    datadir=str(_data),
    broker=[f"kafka://{h}" for h in _s.kafka_bootstrap.split(",")],
    store="memory://",
    web_enabled=False,
    topic_partitions=_s.topic_partitions,
    consumer_auto_offset_reset="earliest",
    stream_buffer_maxsize=8192,
)
readings = app.topic(_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
_seen = {"n": 0}
_clock = Stopwatch()


@app.agent(readings, concurrency=1)
async def decode_only(stream: faust.StreamT) -> None:
    async for events in stream.take_events(_s.batch_max, within=_s.batch_within_s):  # type: ignore[attr-defined]
        if not _clock.started:
            _clock.start()
        for event in events:
            orjson.loads(event.message.value)
        _seen["n"] += len(events)
        if _seen["n"] >= _total:
            _out.write_text(_clock.rate(_seen["n"]).to_json())  # noqa: ASYNC240 (a benchmark's own files, tiny)
            os._exit(0)  # the measurement is done; no orderly shutdown needed


if __name__ == "__main__":
    app.main()
