"""How an agent treats an exception while processing a message (streams.runtime): the words
it logs and dead-letters, and the worker's immediate exit when the environment failed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pydantic import TypeAdapter, ValidationError

from streams.runtime import FATAL_EXIT_CODE, describe

NAME = "某某机械厂"


def test_describe_tells_type_and_message() -> None:
    assert describe(ValueError("not a LoadState record")) == "ValueError: not a LoadState record"
    assert len(describe(RuntimeError("x" * 5000))) == 1000  # the dead letter's detail limit


def test_describe_a_validation_error_without_the_input() -> None:
    """pydantic quotes the input in its message unless a model hides it (ours do): a name must
    not reach a log or a DLQ through any model's error."""
    with pytest.raises(ValidationError) as info:
        TypeAdapter(dict[str, int]).validate_python({"contract_kva": NAME})
    assert NAME in str(info.value)  # what describe() must avoid
    text = describe(info.value)
    assert NAME not in text
    assert text.startswith("ValidationError: ") and "contract_kva" in text


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_fatal_exits_at_once_with_its_code() -> None:
    done = run(
        """
        import logging, sys
        logging.basicConfig(stream=sys.stderr)
        from streams.runtime import fatal
        try:
            fatal("readings batch from partition 1 offset 7", OSError("disk gone"))
        finally:
            print("a finally block ran")  # os._exit: it must not (faust acks in one)
        """
    )
    assert done.returncode == FATAL_EXIT_CODE, done.stderr
    assert "a finally block ran" not in done.stdout
    assert "partition 1 offset 7" in done.stderr and "OSError: disk gone" in done.stderr


@pytest.mark.parametrize("error", ["KafkaError", "RedisError", "OSError", "TimeoutError"])
def test_an_environment_failure_exits_the_worker_instead_of_dead_lettering(error: str) -> None:
    done = run(
        f"""
        import asyncio, logging, sys
        from types import SimpleNamespace
        from aiokafka.errors import KafkaError
        from redis.exceptions import RedisError
        from streams.runtime import Runtime
        logging.basicConfig(stream=sys.stderr)

        class Recorder:
            metrics = SimpleNamespace(events_in=lambda topic: None)

            async def processing_failed(self, *args):
                print("dead-lettered")

        async def process():
            raise {error}("server away")

        event = SimpleNamespace(message=SimpleNamespace(topic="t.in", partition=2, offset=41))
        asyncio.run(Runtime.guarded(Recorder(), "meter.readings", event, process))
        print("went on")
        """
    )
    assert done.returncode == FATAL_EXIT_CODE, done.stderr
    assert "dead-lettered" not in done.stdout and "went on" not in done.stdout
    assert "meter.readings partition 2 offset 41" in done.stderr


def test_a_defect_is_dead_lettered_and_the_agent_goes_on() -> None:
    done = run(
        """
        import asyncio
        from types import SimpleNamespace
        from streams.runtime import Runtime

        class Recorder:
            metrics = SimpleNamespace(events_in=lambda topic: None)

            async def processing_failed(self, topic, events, exc):
                print("dead-lettered", topic, [e.message.offset for e in events], type(exc).__name__)

        async def process():
            raise KeyError("a bug")

        event = SimpleNamespace(message=SimpleNamespace(topic="t.in", partition=2, offset=41))
        asyncio.run(Runtime.guarded(Recorder(), "billing.events", event, process))
        print("went on")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["dead-lettered billing.events [41] KeyError", "went on"]


PUBLISH_WITH_HOOKS = """
import asyncio, logging, sys
from collections import Counter
from types import SimpleNamespace
from aiokafka.errors import KafkaError
from streams.runtime import Runtime
logging.basicConfig(stream=sys.stderr)

sent, cached, seen = [], [], []

class Redis:
    def add(self, cid, doc, raw):
        cached.append(cid)
    async def flush(self):
        return True

async def broken(docs):
    raise {error}("a derived stage failed")

async def healthy(docs):
    seen.extend(d["customer_id"] for d in docs)

rt = SimpleNamespace(
    topics=SimpleNamespace(stats=SimpleNamespace(send_soon=lambda key, value: sent.append(key))),
    redis=Redis(), counters=Counter(), on_stats=[broken, healthy],
)
n = asyncio.run(Runtime.publish_stats(rt, [{{"customer_id": "C1"}}, {{"customer_id": "C2"}}]))
print(n, sent, cached, seen, dict(rt.counters))
"""


def test_a_failing_derived_stage_does_not_stop_the_statistics() -> None:
    done = run(PUBLISH_WITH_HOOKS.format(error="ZeroDivisionError"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "2 [b'C1', b'C2'] ['C1', 'C2'] ['C1', 'C2'] {'stats_published': 2, 'on_stats_failed': 1}"
    )
    assert "ZeroDivisionError: a derived stage failed" in done.stderr


def test_an_environment_failure_in_a_derived_stage_reaches_the_agents_guard() -> None:
    done = run(PUBLISH_WITH_HOOKS.format(error="KafkaError"))
    assert done.returncode == 1 and not done.stdout  # raised out of publish_stats
    assert "KafkaError" in done.stderr.splitlines()[-1]
