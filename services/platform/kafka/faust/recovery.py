"""Table recovery that applies a fetched batch of changelog records at once.

Why this exists: faust-streaming (<0.16) restores a table one record at a time through the
whole stream machinery. Each changelog record goes from the consumer's fetch loop
(`Consumer._drain_messages`, which wraps every record in `Service.wait_first`: four tasks and
an `asyncio.wait`) through the conductor (flow control, producer back-pressure, decode, a
queue of 1,000) to `Recovery._slurp_changelogs`, which takes it with
`asyncio.wait_for(queue.get(), 5.0)` (another task and timer), formats two debug f-strings and
sums the remaining offsets of every partition. Profiled with py-spy on the monitoring worker
(B7, 100,000 households, 200,000 records): one core busy for the whole 100 s, ~500 µs per
record, nearly all of it event-loop work per record (task creation, scheduling, `wait_first`,
`wait_for`, `need_recovery`); storing the rows was under 1%. A raw read of the same
topics takes 4 s.

What changes: `faust_redelivery.RedeliveringConsumer.getmany` hands the records one fetch
returned for a changelog partition, decoded by the table's changelog channel as the conductor
would, to `BatchRecovery.apply_changelog_events` instead of yielding them one by one. That
method is the body of faust's `_slurp_changelogs` loop (faust/tables/recovery.py, 0.15.3) run
over the batch, with faust's semantics kept:

- offsets: an event is applied only when its offset is above the partition's tracked one
  (`active_offsets` / `standby_offsets`), which then moves to it, per event;
- buffers: events go to the table's buffer and `apply_changelog_batch` runs each time it
  reaches the partition's `recovery_buffer_size` / `standby_buffer_size`, as before;
- `table.on_changelog_event` is awaited for every applied event;
- the end of recovery (flush the buffers, `_set_recovery_ended`, `signal_recovery_end`) and
  the standbys-ready signal are checked after each batch instead of after each event: the
  same condition, looked at once the batch is applied;
- aborted transactions: `_slurp_changelogs` below is faust's loop (records can still come
  through the queue, e.g. when something else also subscribes to a changelog topic), and
  its idle count, which lets `detect_aborted_tx` move offsets to the high-water mark after
  two empty 5 s waits, now also restarts when a batch arrives by the direct path; otherwise
  a direct recovery would look idle to it and the offsets could be moved past records still
  being applied.

Two deliberate differences, both on paths faust itself marks as bugs (the "XXX bug"
comments in its loop): a record of a partition that is neither active nor standby is skipped
with a warning (faust's loop applies it to the previous record's table), and a standby
partition's "last event received" time is updated on every batch (faust's loop sets it only
the first time, so its "no events received" warning fires for a partition that is busy).
The remaining-time estimate gets one sample per applied event, the batch's mean time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from itertools import repeat
from time import monotonic
from typing import Any

import faust
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.utils.tracing import finish_span
from mode import Service

log = logging.getLogger(__name__)
IDLE_SECONDS = 5.0  # faust's wait for the next changelog event before it checks for the end
# An active changelog partition with records left to restore that has given none for this long
# is fetched again from its tracked offset (see `refetch_stalled`).
STALL_SECONDS = 30.0
RECOVERY_GC_THRESHOLD = 10_000  # young-generation threshold while recovering (see below)


class BatchRecovery(Recovery):
    """faust's Recovery, applying changelog records in batches (see the module docstring)."""

    _direct_batches = 0  # batches applied by apply_changelog_events, for the idle count
    _gc_threshold: tuple[int, int, int] | None = None  # the process's, while recovering

    def _set_recovery_started(self) -> None:
        super()._set_recovery_started()
        # faust's own loop sets the end signal and clears it at its next pass, at once; the
        # direct path sets it from the fetcher while that loop may wait up to IDLE_SECONDS, so
        # it can still be set when the next rebalance starts a recovery, whose wait for its
        # end would then return at once, over tables never restored. A new recovery starts
        # with it clear (test_a_new_recovery_waits_for_its_own_end).
        self.signal_recovery_end.clear()
        # Recovery allocates a few tracked objects per record (aiokafka's records, faust's
        # messages and events), fetch by fetch: with the default young-generation threshold
        # (700) they survive into the old generation and set off ~70 full collections at 1M
        # households, ~10 s of ~60 (B7, measured with gc.callbacks). Raised while recovering.
        if self._gc_threshold is None:
            self._gc_threshold = gc.get_threshold()
            young, *older = self._gc_threshold
            gc.set_threshold(max(young, RECOVERY_GC_THRESHOLD), *older)

    def _set_recovery_ended(self) -> None:
        super()._set_recovery_ended()
        self._restore_gc_threshold()

    async def on_stop(self) -> None:
        await super().on_stop()
        self._restore_gc_threshold()

    def _restore_gc_threshold(self) -> None:
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None

    @Service.timer(STALL_SECONDS / 3)
    async def _stalled_recovery_check(self) -> None:
        await self.refetch_stalled()

    async def refetch_stalled(self, now: float | None = None) -> dict[Any, int]:
        """Fetch again the active changelog partitions that recovery still waits for but that
        have given no record for STALL_SECONDS; the partitions and offsets sought.

        Seen in the scale-out fault scenario on a loaded machine (issue 16): a restarted
        monitoring worker's recovery waited minutes for two changelog partitions that gave it
        nothing ("No event received for active tp … since recovery start"), so the worker never
        processed or committed its inputs. Whatever left them unfetched (records dropped by a
        fetch that raced a rebalance, a partition left paused), a seek to the tracked offset
        and a resume is safe: a record at or below it is not applied again (`_apply`). A
        partition no longer assigned to this worker is not waited for: its high-water mark is
        dropped, as faust's `revoke` would have.
        """
        if not self.in_recovery:
            return {}
        now = monotonic() if now is None else now
        started = self._recovery_started_at
        consumer = self.app.consumer
        assigned = consumer.assignment()
        stalled: dict[Any, int] = {}
        for tp, left in self.active_remaining().items():
            if left <= 0:
                continue
            if tp not in assigned:
                log.warning("recovery: %s is no longer assigned here: not waiting for it", tp)
                self.active_highwaters.pop(tp, None)
                continue
            last = self._active_events_received_at.get(tp, started)
            if last is not None and now - last >= STALL_SECONDS:
                stalled[tp] = max(self.active_offsets[tp], 0)
                self._active_events_received_at[tp] = now  # once per STALL_SECONDS
        for tp, offset in stalled.items():
            log.warning(
                "recovery: no changelog record from %s for %.0f s with %d left to restore: "
                "fetching again from offset %d",
                tp, STALL_SECONDS, self.active_remaining()[tp], offset,
            )  # fmt: skip
        if stalled:
            consumer.resume_partitions(set(stalled))
            await consumer.seek_wait(stalled)
        await self._signal_if_recovered()  # the dropped partitions may have been the last
        return stalled

    async def apply_changelog_events(self, tp: Any, events: Sequence[Any]) -> None:
        """Apply a batch of one partition's changelog events in offset order, as faust's
        `_slurp_changelogs` would apply them one by one; never raises (faust logs and goes
        on: a record that cannot be applied must not stop the fetcher)."""
        self._direct_batches += 1
        try:
            await self._apply(tp, events)
            await self._signal_if_recovered()
            self._maybe_standbys_ready()
        except Exception as exc:
            log.warning("Error in recovery %r", exc)

    async def _apply(self, tp: Any, events: Sequence[Any]) -> None:
        now = monotonic()
        is_active = tp in self.active_tps
        if not is_active and tp not in self.standby_tps:
            log.warning(
                "recovery: %d records of %s, neither active nor standby here: skipped",
                len(events),
                tp,
            )
            return
        # faust's two branches (active, standby) differ only in these three
        offsets = self.active_offsets if is_active else self.standby_offsets
        received_at = (
            self._active_events_received_at if is_active else self._standby_events_received_at
        )
        table = self.tp_to_table[tp]
        bufsize = self.buffer_sizes.get(tp)
        if bufsize is None:
            bufsize = self.buffer_sizes[tp] = (
                table.recovery_buffer_size if is_active else table.standby_buffer_size
            )
        received_at[tp] = now
        buf = self.buffers[table]
        applied = 0
        for event in events:
            offset = event.message.offset
            seen = offsets.get(tp)
            if seen is not None and offset <= seen:
                continue
            # per record, as faust's loop: a record that fails is logged and the next one
            # applied (the failed one stays in the buffer, applied with the next flush); a
            # failure must not skip the rest of the batch past the offset already tracked
            try:
                offsets[tp] = offset
                buf.append(event)
                await table.on_changelog_event(event)
                if len(buf) >= bufsize:
                    table.apply_changelog_batch(buf)
                    buf.clear()
                    self._last_flush_at = now
                applied += 1
            except Exception as exc:
                log.warning("Error in recovery %r", exc)
        if is_active and applied:
            now_after = monotonic()
            last = self._last_active_event_processed_at
            if last is not None:
                times = self._processing_times
                limit = self.num_samples_required_for_estimate
                times.extend(repeat((now_after - last) / applied, min(applied, limit)))
                while len(times) > limit:
                    times.popleft()
            self._last_active_event_processed_at = now_after

    async def _signal_if_recovered(self, idle_count: int = 0) -> None:
        """faust's `_maybe_signal_recovery_end`; `idle_count`: empty waits in a row (0 when
        called after events)."""
        if idle_count > 1 and self.app.in_transaction:
            await self._detect_aborted_tx()
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()  # apply anything still in the buffers
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            log.debug("Setting recovery end")
            self.signal_recovery_end.set()

    async def _detect_aborted_tx(self) -> None:
        """faust's `detect_aborted_tx`: offsets stuck below the high-water mark while the
        consumer is past it were transaction markers or aborted records."""
        offsets = self.active_offsets
        for tp, highwater in self.active_highwaters.items():
            if highwater is not None and offsets[tp] is not None and offsets[tp] < highwater:
                # faust compares a position that can be None, raising TypeError into its
                # loop's `except Exception`; kept as faust does it
                if await self.app.consumer.position(tp) >= highwater:  # type: ignore[operator]
                    log.info("Aborted tx until highwater for %s", tp)
                    offsets[tp] = highwater

    def _maybe_standbys_ready(self) -> None:
        standby_ready = self._standbys_span is None and self.tables.standbys_ready
        if not standby_ready and not self.standby_remaining_total():
            log.debug("Completed standby partition fetch")
            if self._standbys_span:
                finish_span(self._standbys_span)
                self._standbys_span = None
            self.tables.on_standbys_ready()

    @Service.task
    async def _slurp_changelogs(self) -> None:
        """faust's loop over the changelog queue, its body shared with the direct path."""
        changelog_queue = self.tables.changelog_queue
        idle_count = 0
        direct_seen = self._direct_batches
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                try:
                    event = await asyncio.wait_for(changelog_queue.get(), timeout=IDLE_SECONDS)
                except TimeoutError:
                    if self._direct_batches != direct_seen:
                        # batches came the direct way meanwhile: not idle (see the docstring)
                        direct_seen = self._direct_batches
                        idle_count = 0
                    idle_count += 1
                    if self.should_stop:
                        return
                    await self._signal_if_recovered(idle_count)
                    continue
                idle_count = 0
                await self._apply(event.message.tp, (event,))
                await self._signal_if_recovered()
                self._maybe_standbys_ready()
            except Exception as exc:
                log.warning("Error in recovery %r", exc)


class BatchTableManager(TableManager):
    """faust's TableManager with `BatchRecovery` as its recovery service."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = BatchRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def install(app: faust.App) -> faust.App:
    """Give `app` the batch recovery; call before anything touches `app.tables` (declaring a
    table does). Only `faust_redelivery`'s consumer uses the direct path: with another
    consumer, records come through faust's queue and this is faust's recovery."""
    if "tables" in app.__dict__:
        raise RuntimeError("install faust_recovery before the app's tables are created")
    app.conf.TableManager = BatchTableManager
    return app
