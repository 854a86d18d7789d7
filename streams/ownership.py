"""Which worker owns a customer: the one assigned the customer's partition.

Every customer-keyed topic (readings, billing, customers, history, stats, scores) is keyed by
customer_id and has ``topic_partitions`` partitions, and Kafka's default partitioner puts a key
in partition ``murmur2(key) % n`` (aiokafka's and the Java client's alike). So a customer's
input, state and outputs all live in one partition number, and the worker assigned that
partition of ``meter.readings`` (the group's topics are co-partitioned) is the only one that
publishes for the customer. The views (scoring's population, credit alerts' open alerts) hold
every customer on every worker and use this to tell their own customers from the others'.
"""

from __future__ import annotations

import faust
from aiokafka.partitioner import murmur2

from gridpulse.settings import Settings
from schemas.topics import METER_READINGS


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key (murmur2, like aiokafka/Java)."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


class Ownership:
    """The customers this worker owns, from its consumer's current assignment."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.partitions_n = settings.topic_partitions
        self.readings_topic = settings.topic(METER_READINGS)

    def partitions(self) -> set[int]:
        """The partition numbers assigned to this worker (empty before the first assignment)."""
        assigned = self.app.consumer.assignment()
        return {tp.partition for tp in assigned if tp.topic == self.readings_topic}

    def owns(self, customer_id: str) -> bool:
        return partition_of(customer_id, self.partitions_n) in self.partitions()
