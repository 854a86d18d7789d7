"""Table writes outside per-event iteration.

Batched agents (``stream.take_events``) write each changed customer once per batch, after the
loop over its events. Faust's RocksDB store files a written key under the partition of the
*current event* (``faust.streams.current_event()``), and the changelog of a
``use_partitioner=True`` table goes to the partition of the key. Both agree only when the
current event comes from the key's own partition, so every batched write runs inside
``event_context(one of that key's events)``. Without it, a key would land in whichever
partition's store the stream last touched and be lost to that partition's owner after a
rebalance.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import faust
from faust.streams import _current_event


@contextmanager
def event_context(event: faust.EventT) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
