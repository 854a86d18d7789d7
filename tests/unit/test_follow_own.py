"""Which of the own topic's partitions a view's follower pauses and resumes
(``streams.follow.pause_plan``): paused only once owned and read up to the end offset it had
after the assignment, resumed once no longer owned."""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.follow import pause_plan

S = "stats.customer"
P0, P1, P2 = (TopicPartition(S, p) for p in range(3))


def test_an_owned_partition_is_paused_once_read_up_to_its_end_after_the_assignment():
    since = {P0: 100, P1: 50}
    # P0 still has earlier owners' documents to read: not yet
    assert pause_plan({P0, P1}, set(), {P0: 99, P1: 50}, since) == ({P1}, set())
    assert pause_plan({P0, P1}, {P1}, {P0: 100}, since) == ({P0}, set())
    assert pause_plan({P0, P1}, {P1}, {P0: 130}, since) == ({P0}, set())  # past it: own documents


def test_no_pause_without_the_end_offset_or_the_position():
    assert pause_plan({P0}, set(), {P0: 10}, {}) == (set(), set())  # end not known yet
    assert pause_plan({P0}, set(), {}, {P0: 0}) == (set(), set())


def test_a_partition_not_owned_is_never_paused_and_a_revoked_one_is_resumed():
    assert pause_plan(set(), set(), {P2: 10}, {P2: 0}) == (set(), set())
    assert pause_plan(set(), {P0, P1}, {}, {}) == (set(), {P0, P1})  # revocation: everything
    assert pause_plan({P1}, {P0, P1}, {}, {P1: 5}) == (set(), {P0})  # P1 kept, P0 given up


def test_paused_partitions_stay_paused_while_owned():
    assert pause_plan({P0}, {P0}, {P0: 0}, {P0: 100}) == (set(), set())
