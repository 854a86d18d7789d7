"""Outages in the stream: grid.outages -> ``alerts.outage`` and ``reliability.indices``.

The decisions are pure (``alerts.outage_impact``, ``alerts.reliability``); this module keeps
what they read and publishes what they return.

State. An outage on a feeder hits customers of every partition, and the indices need the
whole year's outages, so every worker keeps an **outage view** of three whole topics, read by a
group-less ``streams.follow.TopicFollower`` (as scoring's population view):

- ``customers`` (compacted) -> ``Topology``: customers indexed by feeder and transformer area,
  by the customers agent's rules (``schemas.validation.profile_record``: an invalid profile
  leaves the previous one, a tombstone deletes the customer);
- ``stats.customer`` (compacted) -> ``est_kw``: per customer a ``LoadEstimate`` of its latest
  stats, ``d30.avg_kw`` and the 24 ``hourly_kw`` (192 bytes of float64); the alert reads the
  hour of the outage start in the settings' zone, else the 30-day average;
- ``grid.outages`` (retention ~400 days: indices are year-to-date) -> ``OutageRecord`` per
  outage_id: scope, notice / start / restore times.

Why not faust tables: a GlobalTable per topic would copy topics that exist anyway into RocksDB
with changelogs of their own; outages are few and the view is small (a profile's routing
fields and 25 floats per customer).

Deciding. The ``outages`` agent (key outage_id, concurrency 1) decodes the event (invalid ->
``grid.outages.dlq``), waits until the view has read everything written to the three topics
before it (``TopicFollower.sync``, bounded by ``GRIDPULSE_OUTAGE_VIEW_WAIT_S``: a profile
published just before the outage counts), folds the event itself into the view (the reader
will see it again later; folding is idempotent), then evaluates:

- every event: the alert ``outage:<outage_id>`` on ``alerts.outage`` (key alert_id);
- ``restore``: the indices of the affected feeders and of the system on ``reliability.indices``
  (keys feeder id, ``system``), recomputed from the year's records, so they are deterministic.

Messages are validated with the output models and sent with ``send_soon``: flushed before the
event's offset commits, so a crash replays the event and re-sends the same documents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import faust
import orjson
from aiokafka import ConsumerRecord

from alerts import reliability
from alerts.outage_impact import (
    CustomerNode,
    LoadEstimate,
    OutageRecord,
    Topology,
    apply_event,
    outage_alert,
)
from schemas.codec import DecodeError, decode_keyed
from schemas.models import OutageAlert, OutageEvent, ReliabilityIndices
from schemas.shared import shared
from schemas.topics import CUSTOMERS, GRID_OUTAGES, STATS_CUSTOMER
from schemas.validation import ProfileChange, profile_record
from streams.agents.scoring import as_of_ts
from streams.follow import TopicFollower
from streams.runtime import Runtime

log = logging.getLogger(__name__)


class OutageView:
    """Topology, estimated load and outage records, fed by the topics and by the agent."""

    def __init__(self, customers_topic: str, stats_topic: str, outages_topic: str) -> None:
        self.topics = (customers_topic, stats_topic, outages_topic)
        self.topology = Topology()
        self.est_kw: dict[str, LoadEstimate] = {}
        self.records: dict[str, OutageRecord] = {}
        # as_of of the estimates put by this worker (put_own) and not replaced from the topic
        # since: an older document read from the topic does not replace them
        self._own_as_of: dict[str, float] = {}

    def apply_record(self, rec: ConsumerRecord) -> None:
        if rec.topic == self.topics[0]:
            self.apply_profile_message(rec.key, rec.value)
        elif rec.topic == self.topics[1]:
            self.apply_stats_message(rec.value)
        else:
            self.apply_outage_message(rec.key, rec.value)

    def apply_profile_message(self, key: bytes | None, value: bytes | None) -> bool:
        change = profile_record(key, value)
        if not isinstance(change, ProfileChange):
            return False  # the customers agent dead-letters it
        if change.profile is None:
            self.topology.delete(change.customer_id)
            self.est_kw.pop(change.customer_id, None)
        else:
            self.topology.put(CustomerNode.from_profile(change.profile))
        return True

    def apply_stats_message(self, value: bytes | None) -> bool:
        if value is None:
            return False
        try:
            doc = orjson.loads(value)
            cid = shared(str(doc["customer_id"]))
            estimate = LoadEstimate.from_stats(doc)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
            return False  # written by gridpulse only
        own = self._own_as_of.get(cid)
        if own is not None:
            if as_of_ts(doc) < own:
                return False  # older than what this worker published itself
            del self._own_as_of[cid]
        if estimate is not None:
            self.est_kw[cid] = estimate
        return True

    def put_own(self, doc: Mapping[str, Any]) -> None:
        """A stats document this worker has just published (the newest there is)."""
        cid = shared(str(doc["customer_id"]))
        estimate = LoadEstimate.from_stats(doc)
        self._own_as_of[cid] = as_of_ts(doc)
        if estimate is not None:
            self.est_kw[cid] = estimate

    def apply_outage_message(self, key: bytes | None, value: bytes | None) -> bool:
        if value is None:
            return False
        try:
            event = decode_keyed(OutageEvent, key, value, "outage_id")
        except DecodeError:
            return False  # the outages agent dead-letters it
        apply_event(self.records, event)
        return True


class OutageStage:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        s = rt.settings
        self.view = OutageView(s.topic(CUSTOMERS), s.topic(STATS_CUSTOMER), s.topic(GRID_OUTAGES))
        # its own stats.customer partitions come in-process (on_stats), not back through Kafka
        self.follower = TopicFollower(
            s,
            self.view.topics,
            self.view.apply_record,
            label="outages",
            counters=rt.counters,
            own_topic=s.topic(STATS_CUSTOMER),
        )

    async def on_stats(self, docs: list[dict[str, Any]]) -> None:
        """``Runtime.on_stats``: the worker's own statistics, into the view at once."""
        for doc in docs:
            self.view.put_own(doc)

    def decide(self, outage: OutageEvent) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Fold the event into the view; the alert document and, on restore, the indices."""
        v = self.view
        apply_event(v.records, outage)
        alert = outage_alert(v.topology, v.records, outage, v.est_kw, tz=self.rt.tz)
        indices = []
        if outage.event == "restore":
            indices = reliability.after_restore(v.records, v.topology, outage.outage_id, self.rt.tz)
        return alert, indices

    async def process_event(self, event: faust.EventT) -> None:
        outage = await self.rt.decode_input(GRID_OUTAGES, event, OutageEvent, key_field="outage_id")
        if outage is None:
            return
        if not await self.follower.sync(self.rt.settings.outage_view_wait_s):
            # decide on what the view holds rather than hold the partition up
            log.warning(
                "outages: view not caught up within the wait; deciding %s on what it has", outage.outage_id
            )
            self.rt.counters["outage_view_behind"] += 1
        alert, indices = self.decide(outage)
        raw = OutageAlert.model_validate(alert).model_dump_json().encode()
        self.rt.topics.alerts_outage.send_soon(key=alert["alert_id"].encode(), value=raw)
        self.rt.counters["outage_alerts_published"] += 1
        self.rt.metrics.alert(alert)
        for doc in indices:
            raw = ReliabilityIndices.model_validate(doc).model_dump_json().encode()
            self.rt.topics.reliability.send_soon(key=doc["scope_id"].encode(), value=raw)
        self.rt.counters["reliability_indices_published"] += len(indices)


def register(rt: Runtime) -> OutageStage:
    stage = OutageStage(rt)

    @rt.app.agent(rt.topics.outages, name="outages", concurrency=1)
    async def outages(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await rt.guarded(GRID_OUTAGES, event, partial(stage.process_event, event))

    rt.on_stats.append(stage.on_stats)
    rt.app.task(stage.follower.run_forever)
    return stage
