"""Scoring in the stream: stats.customer -> scores.customer, Redis scores and value matrix.

The value model (``scoring/``) ranks a customer against the whole population: quintile
breakpoints, supplier totals (B11/B12 denominators) and tier cuts (``PopulationState``). A worker
owns only its partitions' customers, so each worker keeps a **population view**: a plain
aiokafka consumer without a group, assigned every partition of ``stats.customer`` and
``customers`` (both compacted), that keeps per customer only what scoring reads —

- the stats document trimmed to ``STATS_FIELDS`` (~15 numbers and ``ts``), as compact JSON
  bytes (~350 bytes a customer);
- the profile trimmed to ``PROFILE_FIELDS`` (voltage, feeders, emergency generator), decoded
  and validated like the customers agent does (an invalid profile leaves the previous one, a
  tombstone deletes it).

Why not a faust GlobalTable: it would hold whole stats documents (gaps, windows, months of
consumption; ~3 KB each) in RocksDB per worker and adds a changelog of its own; the view is a
dict fed by topics that exist anyway, and the pure scoring code reads the trimmed documents
exactly as it reads whole ones (``tests/unit/test_scoring_stream.py``).

**Every worker computes the PopulationState itself** from its view, in a thread (the pass is
numpy and must not stall the consumer's heartbeats): once the tables are recovered and the
view has read its topics up to their end offsets at start, as soon as the view holds customers
(a worker started on empty topics scores its first customers within seconds of their
statistics), again — at least ``GRIDPULSE_SCORING_MIN_GAP_S`` apart — whenever the population has
grown by ``GRIDPULSE_SCORING_GROWTH_RERUN`` (half) since the last pass, and every
``GRIDPULSE_SCORING_INTERVAL_S`` (``pass_due``). Until the first pass, statistics only wait
(``scores_waiting_for_population``); the first pass scores them all. Customers are sorted by
id before each pass, so workers with the same view get bit-for-bit the same state (float sums
depend on order). No internal topic, no leader election; the price: between passes, workers
may hold states that differ by the few customers whose stats changed within the view's lag.
Once input is quiet they agree.

Who publishes a customer's score: only its owner, the worker holding its partition (the
partition is the key's murmur2, Kafka's default partitioner, as for every customer-keyed topic
here). So a lagging view on another worker can never overwrite a newer score.

- **Stats changed** (``Runtime.on_stats`` hook, inside the agent, before offsets commit):
  the published customers are rescored against the current state in one vectorised call
  (``score_against``; identical to ``scoring.score_one`` per customer) and the view takes their
  new trimmed documents at once (a view entry written by the hook is not replaced by an older
  message the reader has not caught up on: ``arrears.as_of`` decides).
- **After a pass**, every owned customer is compared with what was last published for it and
  only those whose score document changed are published (``changed_scores``: a 16-byte digest
  per owned customer). Customers rescored by the hook while the pass ran are rescored from
  their newest view entry with the new state instead of taking the pass's (older) result.

Output, per changed customer: ``scores.customer`` (key customer_id, ``send_soon`` so it is
flushed before offsets commit) and Redis, in one pipeline per flush:

- ``{prefix}gp:scores:<cid>`` — hash ``doc`` (the published JSON) and ``ts``, like stats;
- ``{prefix}gp:scores:by_value`` — sorted set, score = current_value + potential_value
  (top N: ``ZREVRANGE {prefix}gp:scores:by_value 0 N-1 WITHSCORES``);
- ``{prefix}gp:value_matrix`` — hash cid -> JSON ``[current, potential, quadrant]``: the whole
  value matrix in one call, ``HGETALL {prefix}gp:value_matrix``.

Redis is a cache (as in ``streams/sinks.py``): when it is away, writes wait in memory, one entry
per customer, and never block the pipeline. The view reader also follows ``scores.customer``
(whoever published it), so a restarted worker knows what is published and its first pass
sends only changed scores to Kafka — 100,000 republished scores made every restart a stall —
while it writes every owned score to Redis, which repairs a cache that lost data meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from aiokafka import ConsumerRecord

from schemas.codec import dumps_kept
from schemas.models import CustomerProfile
from schemas.shared import SHARED_VALUES_KEPT, shared
from schemas.topics import CUSTOMERS, SCORES_CUSTOMER, STATS_CUSTOMER
from schemas.validation import ProfileChange, profile_record
from scoring import ModelConfig, PopulationState, load_config, run_population
from scoring.indicators import Population
from scoring.model import score_arrays, to_documents
from streams.follow import TopicFollower
from streams.ownership import partition_of
from streams.runtime import Runtime
from streams.sinks import RedisHashSink, flatten

log = logging.getLogger(__name__)
PASS_POLL_S = 0.5  # how often run_passes asks pass_due

# ---------------------------------------------------------------------- pure: the view's records

STATS_FIELDS: dict[str, tuple[str, ...] | None] = {
    # what scoring.indicators.Population.from_docs reads from a stats.customer document
    "customer_id": None,
    "ts": None,
    "d30": ("kwh", "load_factor"),
    "month": ("power_factor",),
    "arrears": (
        "paid_36m",
        "due_36m",
        "late_fee_amount_36m",
        "oldest_overdue_days",
        "late_fees_12m",
        "reversals_12m",
        "theft_12m",
        "as_of",  # not a scoring input: orders the hook's entries against the reader's
    ),
    "yoy_growth_rate": None,
    "yoy_growth_kwh": None,
}
PROFILE_FIELDS = ("customer_id", "voltage_kv", "feeders", "emergency_generator")


def trim_stats(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ``stats.customer`` document that scoring reads."""
    out: dict[str, Any] = {}
    for name, sub in STATS_FIELDS.items():
        value = doc.get(name)
        if sub is None:
            out[name] = value
        else:
            part = value or {}
            out[name] = {k: part.get(k) for k in sub}
    return out


def trim_profile(profile: CustomerProfile) -> dict[str, Any]:
    d = profile.model_dump(mode="json", by_alias=True)
    return {k: d.get(k) for k in PROFILE_FIELDS}


ScoringTerms = tuple[float | None, tuple[str, ...], bool]
"""What scoring reads of a profile, as the population view keeps it: voltage_kv, feeders,
emergency_generator (``PROFILE_FIELDS`` but the customer_id, its key)."""
_terms_kept: dict[ScoringTerms, ScoringTerms] = {}


def scoring_terms(profile: CustomerProfile) -> ScoringTerms:
    """The profile's :data:`ScoringTerms`, one tuple for all customers with the same (while
    fewer than ``schemas.shared.SHARED_VALUES_KEPT`` distinct ones are kept; a zero voltage is
    not shared, 0.0 and -0.0 being equal)."""
    terms = (
        shared(profile.voltage_kv),
        shared(tuple(shared(f) for f in profile.feeders)),
        profile.emergency_generator,
    )
    if not terms[0] and terms[0] is not None:
        return terms
    got = _terms_kept.get(terms)
    if got is not None:
        return got
    if len(_terms_kept) < SHARED_VALUES_KEPT:
        _terms_kept[terms] = terms
    return terms


def terms_dict(customer_id: str, terms: ScoringTerms) -> dict[str, Any]:
    """The kept terms as :func:`trim_profile` gives them."""
    return {
        "customer_id": customer_id,
        "voltage_kv": terms[0],
        "feeders": list(terms[1]),
        "emergency_generator": terms[2],
    }


def as_of_ts(doc: Mapping[str, Any]) -> float:
    """When the document was computed (``arrears.as_of``), epoch seconds; 0 when absent."""
    raw = (doc.get("arrears") or {}).get("as_of")
    try:
        return datetime.fromisoformat(raw).timestamp() if raw else 0.0
    except ValueError:
        return 0.0


class PopulationView:
    """Latest trimmed stats and profile of every customer, fed by the topics and the hook."""

    def __init__(self) -> None:
        # cid -> (as_of of an entry the hook wrote, or None when it came from the topic; JSON)
        self._stats: dict[str, tuple[float | None, bytes]] = {}
        # cid -> what scoring reads of the profile: (voltage_kv, feeders, emergency_generator),
        # the tuple and its values shared between customers (schemas.shared)
        self._profiles: dict[str, ScoringTerms] = {}

    def __len__(self) -> int:
        return len(self._stats)

    def apply_stats_message(self, value: bytes | None) -> bool:
        """A ``stats.customer`` record read from the topic; False when ignored."""
        if value is None:
            return False
        try:
            doc = orjson.loads(value)
            cid = shared(str(doc["customer_id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False  # not ours to judge: the topic is written by gridpulse only
        held = self._stats.get(cid)
        if held is not None and held[0] is not None and as_of_ts(doc) < held[0]:
            return False  # older than what this worker published itself
        self._stats[cid] = (None, dumps_kept(trim_stats(doc)))
        return True

    def put_own(self, doc: Mapping[str, Any]) -> None:
        """A document this worker has just published (it is the newest there is)."""
        self._stats[shared(str(doc["customer_id"]))] = (as_of_ts(doc), dumps_kept(trim_stats(doc)))

    def apply_profile_message(self, key: bytes | None, value: bytes | None) -> bool:
        """A ``customers`` record: the customers agent's rules (``profile_record``), without the
        DLQ; False when ignored."""
        change = profile_record(key, value)
        if not isinstance(change, ProfileChange):
            return False
        if change.profile is None:
            self._profiles.pop(change.customer_id, None)
        else:
            self._profiles[shared(change.customer_id)] = scoring_terms(change.profile)
        return True

    def stats(self, customer_id: str) -> dict[str, Any] | None:
        held = self._stats.get(customer_id)
        return None if held is None else cast(dict[str, Any], orjson.loads(held[1]))

    def profile(self, customer_id: str) -> dict[str, Any] | None:
        terms = self._profiles.get(customer_id)
        return None if terms is None else terms_dict(customer_id, terms)

    def snapshot(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Stats documents sorted by customer_id (a deterministic pass) and their profiles."""
        docs = [orjson.loads(self._stats[cid][1]) for cid in sorted(self._stats)]
        profiles = {cid: terms_dict(cid, t) for cid, t in self._profiles.items() if cid in self._stats}
        return docs, profiles


# ---------------------------------------------------------------------- pure: decisions


def load_model(path: str | None) -> ModelConfig:
    return load_config(path) if path else ModelConfig()


def score_against(
    docs: Sequence[Mapping[str, Any]],
    profiles: Mapping[str, Any],
    state: PopulationState,
    config: ModelConfig,
) -> list[dict[str, Any]]:
    """``scores.customer`` documents of ``docs`` against a kept population state, in one
    vectorised call: per customer exactly ``scoring.score_one``."""
    if not docs:
        return []
    known = {cid: p for cid, p in profiles.items() if p is not None}
    pop = Population.from_docs(docs, known)
    return to_documents(pop, score_arrays(pop, config, state))


# What a score is: the raw indicator values and the event time behind them are carried along
# but move with every reading; republishing on those would send every customer's score again
# after every batch and every pass (100,000 messages per pass at 100,000 customers). The same
# holds for the pass's origin (`value_origin`, the population mean): it moves with every pass,
# and a customer whose quadrant it changes is republished for the quadrant.
NOT_THE_SCORE = frozenset({"indicators", "ts", "value_origin"})


def score_digest(score: Mapping[str, Any]) -> bytes:
    """Digest of what decides a republication: the 1-5 scores, the values, quadrant, grades,
    tier and model version — not the raw indicators or the time stamp."""
    decisive = {k: v for k, v in score.items() if k not in NOT_THE_SCORE}
    return hashlib.blake2b(orjson.dumps(decisive, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def changed_scores(scores: Iterable[dict[str, Any]], published: dict[str, bytes]) -> list[dict[str, Any]]:
    """The score documents that differ from what was last published per customer
    (``published``, a digest per customer, is updated)."""
    out = []
    for score in scores:
        cid = score["customer_id"]
        digest = score_digest(score)
        if published.get(cid) != digest:
            published[shared(cid)] = digest
            out.append(score)
    return out


def total_value(score: Mapping[str, Any]) -> float:
    return float(score["current_value"]) + float(score["potential_value"])


def value_matrix_entry(score: Mapping[str, Any]) -> bytes:
    return orjson.dumps([score["current_value"], score["potential_value"], score["quadrant"]])


# ---------------------------------------------------------------------- Redis


class ScoreRedisSink(RedisHashSink):
    """Latest score per customer (hash), the by-value sorted set and the value matrix hash,
    written in one pipeline per flush; coalesced per customer and kept while Redis is away
    (the retry and coalescing of ``streams.sinks.RedisHashSink``)."""

    def __init__(self, url: str, prefix: str, *, retry_after_s: float = 2.0) -> None:
        super().__init__(url, f"{prefix}gp:scores:", retry_after_s=retry_after_s)
        self.by_value_key = f"{prefix}gp:scores:by_value"
        self.value_matrix_key = f"{prefix}gp:value_matrix"

    def add(self, score: Mapping[str, Any], raw: bytes | None = None) -> None:  # type: ignore[override]
        self._pending[score["customer_id"]] = (
            flatten(score, raw),
            total_value(score),
            value_matrix_entry(score),
        )

    def _write(self, pipe: Any, batch: Mapping[str, Any]) -> None:
        for cid, (fields, _, _) in batch.items():
            pipe.hset(self.key(cid), mapping=cast(Mapping[Any, Any], fields))
        pipe.zadd(self.by_value_key, {cid: value for cid, (_, value, _) in batch.items()})
        pipe.hset(
            self.value_matrix_key,
            mapping=cast(Mapping[Any, Any], {cid: entry for cid, (_, _, entry) in batch.items()}),
        )


# ---------------------------------------------------------------------- the stage


class ScoringStage:
    def __init__(self, rt: Runtime, config: ModelConfig) -> None:
        self.rt = rt
        self.config = config
        self.view = PopulationView()
        st = rt.settings
        self.topics = (st.topic(STATS_CUSTOMER), st.topic(CUSTOMERS), st.topic(SCORES_CUSTOMER))
        # its own stats.customer partitions come in-process (on_stats -> put_own), not back
        # through Kafka (streams.follow: own_topic)
        self.follower = TopicFollower(
            st,
            self.topics,
            self.apply_record,
            label="scoring",
            counters=rt.counters,
            own_topic=self.topics[0],
        )
        self.view_ready = self.follower.ready  # read up to the end offsets the topics had at start
        self.state: PopulationState | None = None
        self.last_pass_size = 0  # customers in the view at the last pass
        # owned customers whose statistics came while there was no state yet: the first pass
        # scores them even when they reached the view after the pass took its snapshot
        self._waiting: set[str] = set()
        self.published: dict[str, bytes] = {}  # owned customers: digest of the last score sent
        self._rescored_during_pass: set[str] | None = None
        self._redis_repaired = False  # the first pass writes every owned score to Redis
        self.redis = ScoreRedisSink(rt.settings.redis_url, rt.settings.topic_prefix)
        # called with every batch of published scores, after they are sent (credit warnings)
        self.on_scores: list[Callable[[list[dict[str, Any]]], Awaitable[None]]] = []

    # ----------------------------------------------------------------- published scores

    def apply_score_message(self, key: bytes | None, value: bytes | None) -> None:
        """A record of scores.customer (anyone's): the digest of the customer's published score,
        so a restarted worker does not publish every score again."""
        if key is None:
            return
        cid = key.decode("utf-8", "replace")
        if value is None:
            self.published.pop(cid, None)
            return
        try:
            self.published[cid] = score_digest(orjson.loads(value))
        except orjson.JSONDecodeError:
            self.published.pop(cid, None)

    # ----------------------------------------------------------------- publishing

    async def publish(self, scores: list[dict[str, Any]]) -> int:
        for score in scores:
            raw = orjson.dumps(score)
            self.rt.topics.scores.send_soon(key=score["customer_id"].encode(), value=raw)
            self.redis.add(score, raw)
        self.rt.counters["scores_published"] += len(scores)
        await self.redis.flush()
        for hook in self.on_scores:
            await hook(scores)
        return len(scores)

    # ----------------------------------------------------------------- stats changed

    async def on_stats(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            self.view.put_own(doc)
        if not docs:
            return
        if self.state is None:
            self._waiting.update(d["customer_id"] for d in docs)
            self.rt.counters["scores_waiting_for_population"] += len(docs)
            return
        profiles: dict[str, dict[str, Any] | None] = {}
        for d in docs:
            cid = d["customer_id"]
            p = self.rt.profile(cid)
            profiles[cid] = None if p is None else p.scoring_terms(cid)
        scores = score_against(docs, profiles, self.state, self.config)
        if self._rescored_during_pass is not None:
            self._rescored_during_pass.update(profiles)
        await self.publish(changed_scores(scores, self.published))

    # ----------------------------------------------------------------- population pass

    def ready(self) -> bool:
        app = self.rt.app
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # not in the stub
        return self.view_ready.is_set() and recovered and not app.rebalancing

    async def population_pass(self) -> int | None:
        """Recompute the population state from the view and publish the owned customers whose
        score changed; None when the worker is not ready (recovering, rebalancing, view behind)."""
        if not self.ready():
            return None
        docs, profiles = self.view.snapshot()
        if not docs:
            return 0
        started = time.perf_counter()
        self._rescored_during_pass = set()
        try:
            run = await asyncio.to_thread(run_population, docs, profiles, self.config)
        finally:
            rescored, self._rescored_during_pass = self._rescored_during_pass, None
        self.state = run.state
        self.last_pass_size = len(docs)
        self.rt.counters["scoring_passes"] += 1
        owned = self.rt.ownership.partitions()
        n = self.rt.settings.topic_partitions
        scores = [
            s
            for s in run.documents
            if partition_of(s["customer_id"], n) in owned and s["customer_id"] not in rescored
        ]
        # rescored by the hook meanwhile, or waiting for a state and newer than the snapshot
        waiting, self._waiting = self._waiting, set()
        rescored |= waiting - {d["customer_id"] for d in docs}
        newer = [d for cid in sorted(rescored) if (d := self.view.stats(cid)) is not None]
        scores += score_against(
            newer,
            {d["customer_id"]: self.view.profile(d["customer_id"]) for d in newer},
            run.state,
            self.config,
        )
        changed = changed_scores(scores, self.published)
        if not self._redis_repaired:
            # Redis is a cache that may have lost data while this worker was away; its first
            # pass writes every owned score there, but sends only the changed ones to Kafka
            unchanged = {s["customer_id"] for s in scores} - {s["customer_id"] for s in changed}
            for score in scores:
                if score["customer_id"] in unchanged:
                    self.redis.add(score)
            self._redis_repaired = True
        n = await self.publish(changed)
        self.rt.metrics.scoring_pass(time.perf_counter() - started)
        return n

    # ----------------------------------------------------------------- the view's reader

    def apply_record(self, rec: ConsumerRecord) -> None:
        """A record of stats.customer or customers (into the view) or of scores.customer (the
        digest of what is published), read from the beginning by ``self.follower``."""
        if rec.topic == self.topics[0]:
            self.view.apply_stats_message(rec.value)
        elif rec.topic == self.topics[1]:
            self.view.apply_profile_message(rec.key, rec.value)
        else:
            self.apply_score_message(rec.key, rec.value)

    # ----------------------------------------------------------------- when passes run

    async def run_passes(self) -> None:
        """Population passes, forever: as soon as the worker is ready and the view holds
        customers (a new deployment scores within seconds, not after a whole interval), again
        when the population has grown materially, and every ``GRIDPULSE_SCORING_INTERVAL_S``."""
        s = self.rt.settings
        loop = asyncio.get_running_loop()
        last_at: float | None = None  # loop time of the last pass, or of the last failed one
        while True:
            await asyncio.sleep(PASS_POLL_S)
            if not self.ready():
                continue
            due = pass_due(
                view_size=len(self.view),
                last_size=self.last_pass_size,
                has_state=self.state is not None,
                since_last_s=None if last_at is None else loop.time() - last_at,
                interval_s=s.scoring_interval_s,
                growth=s.scoring_growth_rerun,
                min_gap_s=s.scoring_min_gap_s,
            )
            if not due:
                continue
            try:
                n = await self.population_pass()
            except Exception:
                # a failed pass keeps the last state; the next one tries again after the gap
                log.exception("scoring: population pass failed")
                self.rt.counters["scoring_pass_failures"] += 1
                last_at = loop.time()
                continue
            if n is None:
                continue  # not ready after all (a rebalance began)
            last_at = loop.time()
            if n > 0:
                log.info("scoring: population pass over %d customers re-published %d", self.last_pass_size, n)


def pass_due(
    *,
    view_size: int,
    last_size: int,
    has_state: bool,
    since_last_s: float | None,
    interval_s: float,
    growth: float,
    min_gap_s: float,
) -> bool:
    """Whether a population pass is due (the worker being ready).

    - never on an empty view (nothing to rank; the worker started before any data);
    - the first: at once once the view holds customers (``since_last_s`` None), or ``min_gap_s``
      after a failed attempt;
    - then every ``interval_s``, and sooner — but ``min_gap_s`` apart, so a population streaming
      in is ranked a few times, not at every customer — when the view holds more than
      ``1 + growth`` times the customers of the last pass: quintile breakpoints and tier cuts
      drawn on the first 60 customers of a deployment must not rank the next 10,000 for an
      interval.
    """
    if view_size == 0:
        return False
    if since_last_s is None:
        return True
    if since_last_s < min_gap_s:
        return False
    if not has_state or since_last_s >= interval_s:
        return True
    return view_size > last_size * (1.0 + growth)


def register(rt: Runtime) -> ScoringStage:
    stage = ScoringStage(rt, load_model(rt.settings.scoring_model_path))
    rt.on_stats.append(stage.on_stats)

    rt.app.task(stage.follower.run_forever)
    rt.app.task(stage.run_passes)
    return stage
