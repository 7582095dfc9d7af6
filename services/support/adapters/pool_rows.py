"""A pool's state across rows of the support app's pools table, so no row grows with its history.

One row per pool held everything (its holders, every waiting need in full, every measure id it
ever closed): at a province's scale (`shouwang simulate --scale 10`) a county-wide job pool's row
passed Kafka's 1 MB record limit in the table's changelog and the worker stopped, and each
command rewrote the whole row, so the changelog's bytes grew with the square of the pool's
history. Now a pool is:

- its row (key: the pool instance), what every command reads: the holders (measure id →
  household, cadre), the queue as measure ids in order, the cadres. About 80 bytes a holder and
  45 a waiter, where a waiting need took ~600 and the closed list only grew;
- a member row per waiting need (the need) and per closed measure id (key: the instance, 0x1f,
  the measure id), each written once, when that measure changes.

Closed ids are read one at a time, for the command's own measure: the matcher consults `closed`
only for the need it is allocating (`allocate`) and the id it is releasing (`release`); promoting
waiters and updating cadres never do. So the `PoolState` handed to the matcher holds at most that
one id in `closed`, and decides exactly as with the full set (a property test runs random command
sequences both ways).

The decoded state of each pool is kept in memory with the bytes of the row it came from, so a
command decodes the queue's needs again only after a restart, or when the row changed under it
(another worker owned the partition meanwhile): equal bytes mean equal holders, queue and cadres,
and a queued id's need is the one its first request carried.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import replace
from types import MappingProxyType

from services.support.adapters.table_codec import need_from_json, need_to_json
from services.support.domain.matcher import Cadre, Holding, Need, PoolState

# No pool instance name holds it (catalogue pool ids and township names), so a member key never
# equals a pool's key or another pool's member key.
SEPARATOR = b"\x1f"
CLOSED = b'{"closed":true}'


def member_key(pool_key: bytes, measure_id: str) -> bytes:
    return pool_key + SEPARATOR + measure_id.encode()


def dump_head(state: PoolState) -> bytes:
    return json.dumps({
        "pool": state.pool,
        "holders": {k: [h.household_id, h.cadre_id] for k, h in state.holders.items()},
        "queue": [n.measure_id for n in state.waiting],
        "cadres": [list(vars(c).values()) for c in state.cadres.values()],
    }, ensure_ascii=False, separators=(",", ":")).encode()  # fmt: skip


def _head_state(data: dict, waiting: tuple[Need, ...], closed: frozenset[str]) -> PoolState:
    return PoolState(
        pool=data["pool"],
        holders=MappingProxyType({k: Holding(*v) for k, v in data["holders"].items()}),
        waiting=waiting,
        closed=closed,
        cadres=MappingProxyType({c[0]: Cadre(*c) for c in data["cadres"]}),
    )


class PoolRows:
    """Reads a pool's state from `table` and writes back only what a command changed."""

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self._table = table
        self._decoded: dict[bytes, tuple[bytes, PoolState]] = {}

    def load(self, key: bytes, instance: str, measure_id: str | None) -> PoolState:
        """The pool's state for a command about `measure_id` (None: about no measure), with
        `closed` holding that id if the pool closed it. ValueError, KeyError or TypeError when a
        stored row is not one this code wrote."""
        state = self._state(key, instance)
        if measure_id is not None and self.closed(key, measure_id):
            return replace(state, closed=frozenset({measure_id}))
        return state

    def store(self, key: bytes, before: PoolState, after: PoolState) -> None:
        """Write what changed from `before` (as `load` gave it) to `after`."""
        queued_before = {n.measure_id for n in before.waiting}
        queued_after = {n.measure_id for n in after.waiting}
        for need in after.waiting:
            if need.measure_id not in queued_before:
                self._table[member_key(key, need.measure_id)] = _dump_waiting(need)
        for measure_id in after.closed - before.closed:
            self._table[member_key(key, measure_id)] = CLOSED
        for measure_id in queued_before - queued_after - after.closed:
            del self._table[member_key(key, measure_id)]  # served: the pool's row holds it now
        head = dump_head(after)
        if self._table.get(key) != head:
            self._table[key] = head
        self._decoded[key] = (head, replace(after, closed=frozenset()))

    def closed(self, key: bytes, measure_id: str) -> bool:
        return self._table.get(member_key(key, measure_id)) == CLOSED

    def _state(self, key: bytes, instance: str) -> PoolState:
        raw = self._table.get(key)
        if not raw:
            return PoolState(instance)
        cached = self._decoded.get(key)
        if cached is not None and cached[0] == raw:
            return cached[1]
        data = json.loads(raw)
        if "queue" not in data:  # one row holding everything, written before member rows
            whole = _head_state(
                data, tuple(need_from_json(n) for n in data["waiting"]), frozenset(data["closed"])
            )
            self.store(key, PoolState(whole.pool), whole)  # spread over rows from now on
            return replace(whole, closed=frozenset())
        waiting = []
        for measure_id in data["queue"]:
            member = self._table.get(member_key(key, measure_id))
            if not member or member == CLOSED:
                raise KeyError(f"pool {data['pool']} queues measure {measure_id} without its need")
            waiting.append(need_from_json(json.loads(member)["waiting"]))
        state = _head_state(data, tuple(waiting), frozenset())
        self._decoded[key] = (raw, state)
        return state


def _dump_waiting(need: Need) -> bytes:
    return json.dumps({"waiting": need_to_json(need)}, ensure_ascii=False).encode()


class PoolBatch:
    """One pool's commands of a batch: its rows read once, each command applied to the state
    the one before it left, the rows written once after the last (`store`), so a batch of n
    commands writes the pool's row once instead of n times.

    `closed` holds the ids the batch's commands asked about that the rows have closed, and those
    its commands closed: each command still sees its own measure's standing (see the module)."""

    def __init__(self, rows: PoolRows, key: bytes) -> None:
        self.rows, self.key = rows, key
        self.before: PoolState | None = None
        self.state: PoolState | None = None

    def state_for(self, instance: str, measure_id: str | None) -> PoolState:
        if self.before is None or self.state is None:
            self.before = self.state = self.rows.load(self.key, instance, None)
        if (
            measure_id is not None
            and measure_id not in self.state.closed
            and self.rows.closed(self.key, measure_id)
        ):
            self.before = replace(self.before, closed=self.before.closed | {measure_id})
            self.state = replace(self.state, closed=self.state.closed | {measure_id})
        return self.state

    def advance(self, state: PoolState) -> None:
        """`state` is the pool's once its command's decisions are sent (not before: a command
        retried after a broker error decides again from the state before it)."""
        self.state = state

    def store(self) -> PoolState | None:
        """Write what the batch changed; the pool's state after it (None: no command read it)."""
        if self.before is None or self.state is None:
            return None
        self.rows.store(self.key, self.before, self.state)
        return self.state
