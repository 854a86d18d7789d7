"""One object for equal values held per customer (profiles' categories, voltages, tariffs,
feeder lists, and the customer ids): a worker keeps a few fields of every customer's profile in
its caches and views, and most of those values repeat across customers; each of its
per-customer structures is keyed by the customer id, which would otherwise be a string of its
own in each (decoded from a different message). Strings are interned; floats and tuples or
frozensets of strings are the first equal one seen, up to :data:`SHARED_VALUES_KEPT` distinct
values of each kind (past that, values are kept per customer, as without sharing)."""

from __future__ import annotations

import sys
from typing import Any, TypeVar, cast

T = TypeVar("T")

SHARED_VALUES_KEPT = 65_536
_floats: dict[Any, Any] = {}
_strings: dict[Any, Any] = {}


def shared(value: T) -> T:
    """``value``, or an equal object kept before. Only types whose equal values print the same
    are shared: a float zero is left alone (0.0 == -0.0), as is any other type."""
    v: Any = value
    kind = type(v)
    if kind is str:
        return cast(T, sys.intern(v))
    kept: dict[Any, Any]
    if kind is float:
        if not v:
            return value
        kept = _floats
    elif kind is tuple or kind is frozenset:
        if not all(type(x) is str for x in v):
            return value
        kept = _strings
    else:
        return value
    got = kept.get(v)
    if got is not None:
        return cast(T, got)
    if len(kept) < SHARED_VALUES_KEPT:
        kept[v] = v
    return value
