"""A faust transport whose consumer never silently drops a record it fetched again.

faust's fetch loop (`Consumer._drain_messages`) remembers the last offset it handed to a
stream per partition and drops, without acking and without a log line above DEBUG, any
record whose offset is below it. That guard is meant to skip duplicates, but faust also
moves the fetch position back (recovery's "seek stream partitions to committed offsets",
a rebalance) while records fetched before the seek are still being handed out. The
records between the committed offset and that stale "read offset" are then fetched
again and dropped. Found by the fault harness (`make faults --quick`, crash scenario on a
loaded 2-core machine): after a kill -9 and restart the monitoring worker's state lacked
hundreds of events and its committed offsets stalled; with faust's DEBUG logging the drops
show as "DROPPED MESSAGE ROFF" for every offset from the committed one up to the last
read one. faust-streaming issues #216 and #221 report the same family of skips.

It also skips, with no log at all, records of a partition that is not "active" (paused by
recovery, say) when the fetched batch is handed out, although the fetch position is past
them.

Our agents are idempotent (the fold ignores a seen event id, emitted ids are
deterministic, the support pool keeps decisions by id), so a record delivered twice is
harmless and a record dropped is a loss. This consumer therefore clears the stale read
offset when a record below it arrives, so faust delivers it (and acks it: its ack index
ignores an offset acked before), and seeks a partition back to the first record it would
have skipped. As a last line, a check every 15 s fetches a partition again from its
committed offset when that offset was handed out and then vanished (in no queue, not being
processed, not acked: a queue cleared by flow control, say). And where faust would count a
hole in the offsets it hands out as acked ("gaps", meant for transaction markers and
compacted topics, which our input topics do not have), the hole is left un-acked so the
check fetches it again; only a hole still there after three fetches is accepted as a gap.
faust's commit rule (`_new_offset`) would still pass a hole of one offset at the commit point
(it lets the first acked offset be one past the stored committed offset, which is already the
next one to read): a loss; `_new_offset` here waits at it. A partition the group never
committed gets its first offset as its committed one (`perform_seek`), so that rule and the
lost-record check hold for its first records too.

faust's "seek back to the committed offsets" (after a rebalance's recovery, and when a fetch
raced a rebalance) leaves a partition that has no committed offset where its fetch position is:
aiokafka's `seek_to_committed` seeks only to an offset above 0. Such a partition was then
never read again (the scale-out stall, issue 16): a worker alone in the group processes its
partitions, a second worker joins before the first commit, faust's revoke drops the acked
offsets before its revoke-time commit (`Consumer.on_partitions_revoked` pops `_acked` first),
and the partitions assigned back to the same worker keep their position at the end of the
log, with nothing acked and nothing left to fetch: their offsets were never committed. (A
partition with a committed offset is sought back to it and read again, so only never-committed
partitions stalled.) The same no-op seek follows a fetch that raced a rebalance (`getmany`
drops it and seeks back): a never-committed partition's dropped records were not fetched
again. This consumer seeks a partition with no committed offset to its first offset, where a
consumer new to the group would start (`auto_offset_reset="earliest"`).

Changelog records, when the app's recovery is `faust_recovery.BatchRecovery`, skip faust's
per-record path: the records one fetch returned for a changelog partition are decoded by the
table's changelog channel and handed to the recovery as one batch (see `faust_recovery` for
why: that path cost ~500 µs per record, B7). Everything else is faust's own code. The consumer
also counts the records of the current fetch it has yet to hand out (`handing_out`): a
batch-taking agent (`worker.consume_batches`) waits for those instead of taking each record as
faust's fetch loop trickles it in (the loop and the agent took turns record by record, every
batch one record: issue 19, B2).

Input records of a stream that takes batches (`worker.consume_batches` asks for it with
`take_batches`) skip faust's per-record path the same way: the records one fetch returned for
such a partition become events here and go to the stream's queue as one `FetchedBatch` (in
chunks of the stream's limit), without faust's per-record `wait_first` (four tasks), conductor
callback, queue item and stream step (issue 19, B2: that path was the worker's largest cost
after the batched agent). The stream tracks and acks each record as faust's would.

Long because it is one consumer: the fetch loop, the commit rule and the lost-record check
read and write the same bookkeeping (read, acked and committed offsets) and must be read
together.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.serializers import codecs as faust_codecs
from faust.serializers import registry as faust_registry
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

log = logging.getLogger(__name__)
# How long a partition may sit with its next offset handed out but neither in a stream's
# queue, nor being processed, nor acked before it is fetched again (two checks apart).
LOST_CHECK_SECONDS = 15.0
MAX_REFETCHES = 3
# Changelog records are decoded and handed to the recovery this many at a time: a fetch can
# return 100,000+ of them, and their messages and events, alive together, would survive into
# the garbage collector's old generation and trigger full collections (B7).
CHANGELOG_CHUNK = 1000


class RedeliveringConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, delivering re-fetched records instead of dropping them.

    `getmany` is faust's own (faust/transport/consumer.py) but for the two drops: a record
    below the stale read offset is delivered, and the records of a partition that was not
    active when they arrived are fetched again (seek back) instead of skipped; and changelog
    records go to a batch-taking recovery per partition (`_deliver_changelogs`).
    """

    redelivered = 0  # records that faust would have dropped (for tests and the log)
    refetched = 0  # partitions sought back over records faust would have skipped
    recovered = 0  # partitions fetched again by the lost-record check
    holes = 0  # offsets skipped in the middle of a partition, left un-acked
    restarted = 0  # partitions with no committed offset sought to their start
    handing_out = 0  # records of the current fetch not yet handed to faust's fetch loop
    _suspects: dict[Any, int] | None = None  # partition -> committed offset seen stuck
    _attempts: dict[tuple[Any, int], int] | None = None  # (partition, offset) -> refetches
    # never-committed partitions sought to their first offset, until perform_seek records it
    _starts: dict[Any, int] | None = None
    # Partitions where an offset stayed missing after MAX_REFETCHES (a real hole in the log:
    # deleted by retention, or a producer that started using transactions): faust's gap
    # logic is trusted for them from then on, with an error in the log.
    gaps_accepted: frozenset | set = frozenset()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 (faust's signature)
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # as faust: the fetch raced a rebalance; back to the committed offsets
            try:
                await self.perform_seek()
            except Exception as exc:
                log.warning("seeking to committed offsets while flow is stopped: %r", exc)
            return
        read_offsets = self._read_offset
        skipped: dict[Any, int] = {}  # partition -> first offset not handed out
        channels = self._batched_changelogs(records)
        if channels:
            batches = {tp: rs for tp, rs in records.items() if tp in channels}
            records = {tp: rs for tp, rs in records.items() if tp not in channels}
            if not await self._deliver_changelogs(
                batches, channels, active_partitions, generation_id, skipped
            ):
                records = {}  # a rebalance began: as below, hand out nothing more
        feeds = self._batch_feeds(records)
        if feeds and records:
            batches = {tp: rs for tp, rs in records.items() if tp in feeds}
            records = {tp: rs for tp, rs in records.items() if tp not in feeds}
            if not await self._deliver_batches(
                batches, feeds, active_partitions, generation_id, skipped
            ):
                records = {}  # a rebalance began: as below, hand out nothing more
        # records of this fetch not yet handed out: a batch-taking agent waits for them
        # (`worker.consume_batches`) instead of taking them one by one as they trickle in
        self.handing_out = sum(len(batch) for batch in records.values())
        try:
            for tp, record in self.scheduler.iterate(records):
                self.handing_out -= 1
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    break  # a rebalance began: recovery seeks to the committed offsets after it
                if tp in skipped:
                    continue
                if (
                    active_partitions is None
                    or tp in active_partitions
                    or tp in self._buffered_partitions
                ):
                    read = read_offsets.get(tp)
                    if (
                        read is not None
                        and record.offset > read + 1
                        and tp not in self.gaps_accepted
                    ):
                        # faust would count the offsets in between as acked ("gaps", for
                        # transaction markers and compaction). Our input topics have neither, so a
                        # hole means records lost in flight: leave it un-acked, so the commit
                        # stops there and the lost-record check fetches it again.
                        read_offsets[tp] = None
                        self.holes += 1
                        log.info(
                            "%s[%d]: offsets %d..%d were not handed out; not counting them as read",
                            tp.topic, tp.partition, read + 1, record.offset - 1,
                        )  # fmt: skip
                    elif read is not None and record.offset < read:
                        # None makes the fetch loop deliver this record and skip its gap check,
                        # which is right: the offsets from here on are read again in order.
                        read_offsets[tp] = None
                        self.redelivered += 1
                        log.info(
                            "re-delivering %s[%d] from offset %d (faust had read up to %d)",
                            tp.topic, tp.partition, record.offset, read,
                        )  # fmt: skip
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    yield tp, self._to_message(tp, record)
                else:
                    # paused (recovery) while these were in flight: the fetch position is already
                    # past them, so faust would never read them again in this session
                    skipped[tp] = record.offset
        finally:
            self.handing_out = 0
        for tp, offset in skipped.items():
            try:
                await self.seek(tp, offset)
                self.refetched += 1
                log.info("fetching %s[%d] again from offset %d", tp.topic, tp.partition, offset)
            except Exception as exc:  # revoked meanwhile: its next owner starts from commits
                log.warning(
                    "cannot seek %s[%d] back to %d: %r", tp.topic, tp.partition, offset, exc
                )

    async def seek_to_committed(self) -> Mapping[Any, int]:
        """faust's seek of every assigned partition to its committed offset, and of an input
        partition with none to its first offset (see the module docstring: the stall)."""
        committed = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return committed  # another reset policy: faust's behaviour, unchanged
        uncommitted = [
            tp
            for tp, offset in committed.items()
            if not offset  # None or 0: aiokafka did not seek it
            and not self._is_changelog_tp(tp)  # the recovery positions those itself
            and self.app.topics.acks_enabled_for(tp.topic)
        ]
        if uncommitted:
            earliest = await self.earliest_offsets(*uncommitted)
            starts = self._starts if self._starts is not None else {}
            for tp in uncommitted:
                starts[tp] = earliest.get(tp) or 0
                await self._seek(tp, starts[tp])
            self._starts = starts
            self.restarted += len(uncommitted)
            log.info(
                "%d partitions without a committed offset: fetching them from their start",
                len(uncommitted),
            )
        return committed

    async def perform_seek(self) -> None:
        """faust's, then a partition the group never committed gets its first offset as its
        committed one: faust keeps none for it (`perform_seek` drops 0 and None), and without one
        neither the first commit's head check (`_new_offset`) nor the lost-record check can see
        a record lost at the partition's head (the commit would go past it: a loss)."""
        await super().perform_seek()
        starts, self._starts = self._starts or {}, None
        for tp, start in starts.items():
            if self._committed_offset.get(tp) is None:
                self._committed_offset[tp] = start

    def _new_offset(self, tp: Any) -> int | None:
        """faust's next offset to commit, but never past a record not processed at the head.

        faust stores the next offset to read as a partition's committed offset (`_commit_offsets`
        saves the last acked + 1) yet lets the first acked offset be one past it, as if it were
        the last offset read: a record lost in flight exactly at the commit point (a one-offset
        hole, see `getmany`) was committed over and never processed. Here the commit waits at
        that record, and the lost-record check fetches it again.
        """
        acked = self._acked.get(tp)
        committed = self._committed_offset.get(tp)
        if acked and committed is not None and tp not in self.gaps_accepted:
            gap = self._gap.get(tp)
            if min(acked) > committed and not (gap and gap.overlaps(committed)):
                return None
        return super()._new_offset(tp)

    def _batched_changelogs(self, records: dict[Any, Any]) -> dict[Any, Any]:
        """Changelog partitions in `records` to hand to the recovery in batches, with the
        channel that decodes them: only when the recovery takes batches and the table's
        changelog channel is the partition's one subscriber (else faust's path, unchanged)."""
        if not records:
            return {}
        tables = self.app.tables
        if not hasattr(tables.recovery, "apply_changelog_events"):
            return {}
        queue = tables.changelog_queue
        index = self.app.topics._tp_index
        batched = {}
        for tp in records:
            if self._is_changelog_tp(tp):
                subscribers = index.get(tp, ())
                if len(subscribers) == 1:
                    (channel,) = subscribers
                    if channel.queue is queue:
                        batched[tp] = channel
        return batched

    def _paused_meanwhile(self, tp: Any, active_partitions: Any) -> bool:
        """Whether `tp` was paused while its batch was being fetched."""
        return not (
            active_partitions is None or tp in active_partitions or tp in self._buffered_partitions
        )

    async def _deliver_changelogs(
        self,
        batches: dict[Any, list[Any]],
        channels: dict[Any, Any],
        active_partitions: set[Any] | None,
        generation_id: int,
        skipped: dict[Any, int],
    ) -> bool:
        """What faust's fetch loop and conductor do for each changelog record, once per
        partition's batch; False when a rebalance began (the rest is not handed out)."""
        app = self.app
        recovery = app.tables.recovery
        for tp in list(batches):
            batch = batches.pop(tp)  # freed once handed over (see CHANGELOG_CHUNK)
            if not self.flow_active or app.consumer_generation_id != generation_id:
                return False
            if self._paused_meanwhile(tp, active_partitions):
                skipped[tp] = batch[0].offset  # fetched again (see getmany)
                continue
            # the conductor waits for both before each record
            await app.flow_control.acquire()
            await app.producer.buffer.wait_until_ebb()
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            channel = channels[tp]
            raw_event = raw_event_class(app, channel)
            for start in range(0, len(batch), CHANGELOG_CHUNK):
                if not self.flow_active or app.consumer_generation_id != generation_id:
                    return False
                chunk = batch[start : start + CHANGELOG_CHUNK]
                events = []
                for record in chunk:
                    message = self._to_message(tp, record)
                    message.incref(1)
                    if raw_event is not None:
                        key, value, headers = message.key, message.value, message.headers
                        events.append(raw_event(app, key, value, headers, message))
                        continue
                    try:
                        events.append(await channel.decode(message, propagate=True))
                    except KeyDecodeError as exc:  # as the conductor: the channel reports it
                        message.ack(self, n=1)
                        await channel.on_key_decode_error(exc, message)
                    except ValueDecodeError as exc:
                        message.ack(self, n=1)
                        await channel.on_value_decode_error(exc, message)
                self._read_offset[tp] = chunk[-1].offset
                if events:
                    await recovery.apply_changelog_events(tp, events)
                # let the loop run between chunks (web, timers, a rebalance's callbacks), as
                # faust's fetch loop does every 100 records; the rebalance check above needs it
                await asyncio.sleep(0)
        return True

    def _batch_feeds(self, records: dict[Any, Any]) -> dict[Any, tuple[Any, BatchFeed, Any]]:
        """Input partitions in `records` whose one subscriber is a batch-taking stream (its
        queue carries a `BatchFeed`) over raw bytes: partition -> (channel, feed, event class).
        Anything else (two subscribers, a typed schema) takes faust's per-record path."""
        if not records:
            return {}
        index = self.app.topics._tp_index
        feeds = {}
        for tp in records:
            subscribers = index.get(tp, ())
            if len(subscribers) != 1:
                continue
            (channel,) = subscribers
            feed = getattr(channel.queue, FEED_ATTRIBUTE, None)
            if feed is None:
                continue
            event_class = raw_event_class(self.app, channel)
            if event_class is not None:
                feeds[tp] = (channel, feed, event_class)
        return feeds

    async def _deliver_batches(
        self,
        batches: dict[Any, list[Any]],
        feeds: dict[Any, tuple[Any, BatchFeed, Any]],
        active_partitions: set[Any] | None,
        generation_id: int,
        skipped: dict[Any, int],
    ) -> bool:
        """What faust's fetch loop and conductor do for each input record, once per chunk of a
        partition's batch: the records become events (no decode: raw bytes), go to the stream's
        queue as one `FetchedBatch` and count as read; False when a rebalance began (the rest
        is not handed out: the rebalance's recovery seeks back to the committed offsets).

        Kept from the per-record path: flow control and the producer's back-pressure before
        each hand-off, a bounded queue (the feed's limit in records, the stream's buffer
        before), the redelivery of records below the read offset and the un-acked holes (see
        `getmany`), faust's gap for a partition whose holes were accepted, its commit every
        `broker_commit_every` acks. Tracking (unacked) and acking stay with the stream, as
        for a record: `worker.consume_batches` tracks a batch's messages when it takes it and
        acks them after it is applied, and never takes a batch of an older generation.

        Partitions of the same number are handed out one after another, whatever their topic:
        co-partitioned inputs hold a key's records of every topic under one number, so a
        batch-taking agent then finds them in one batch. aiokafka returns a fetch topic by
        topic, and the monitoring agent folded, assessed and stored a household once per
        topic it had records in (issue 19, B2: see `worker.BATCH_LIMIT`)."""
        app = self.app
        read_offsets = self._read_offset
        for tp in sorted(batches, key=_partition_major):
            batch = batches[tp]
            channel, feed, event_class = feeds[tp]
            if self._paused_meanwhile(tp, active_partitions):
                skipped[tp] = batch[0].offset  # fetched again (see getmany)
                continue
            for start in range(0, len(batch), feed.limit):
                chunk = batch[start : start + feed.limit]
                if not await self._room_for(channel.queue, feed, len(chunk)):
                    return False
                await app.flow_control.acquire()
                await app.producer.buffer.wait_until_ebb()
                if not self.flow_active or app.consumer_generation_id != generation_id:
                    return False
                if (
                    self._commit_every is not None and self._n_acked >= self._commit_every
                ):  # as faust's fetch loop, before a record is handed out
                    self._n_acked = 0
                    await self.commit()
                events = []
                read = read_offsets.get(tp)
                for record in chunk:
                    offset = record.offset
                    if read is not None and offset > read + 1:
                        if tp in self.gaps_accepted:
                            await self._add_gap(tp, read + 1, offset)
                        else:  # a hole: left un-acked (see getmany)
                            self.holes += 1
                            log.info(
                                "%s[%d]: offsets %d..%d were not handed out; not counting them "
                                "as read",
                                tp.topic, tp.partition, read + 1, offset - 1,
                            )  # fmt: skip
                    elif read is not None and offset < read:
                        self.redelivered += 1
                        log.info(
                            "re-delivering %s[%d] from offset %d (faust had read up to %d)",
                            tp.topic, tp.partition, offset, read,
                        )  # fmt: skip
                    read = offset
                    message = self._to_message(tp, record)
                    message.incref(1)
                    events.append(
                        event_class(app, message.key, message.value, message.headers, message)
                    )
                app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                await channel.queue.put(FetchedBatch(events, generation_id))
                read_offsets[tp] = read
        return True

    async def _room_for(self, queue: Any, feed: BatchFeed, records: int) -> bool:
        """Wait until the stream's queue holds fewer than the feed's limit of records (or is
        empty: a chunk is never larger than the limit); False if flow stopped meanwhile (a
        rebalance: faust's fetch loop abandons a record's hand-off then too)."""
        while queued_records(queue) + records > feed.limit and queued_records(queue):
            if not self.flow_active:
                return False
            feed.taken.clear()
            try:
                # bounded: a queue cleared by flow control never signals
                await asyncio.wait_for(feed.taken.wait(), ROOM_WAIT_SECONDS)
            except TimeoutError:
                pass
        return self.flow_active

    def lost_partitions(self) -> dict[Any, int]:
        """Partitions whose next offset to commit was handed out and then lost.

        faust commits a partition up to its first offset not acked. When that offset was
        read (faust's read offset is at or past it) but is in no stream's queue, not being
        processed (faust tracks a message as unacked from the moment a stream takes it) and
        not acked, nothing will ever process it in this session: a queue cleared by flow
        control after a seek, for one, drops records whose fetch position is behind us.
        """
        if not self.flow_active or self.app.in_recovery or self.app.rebalancing:
            return {}
        busy = {message.tp for message in self._unacked_messages}
        lost = {}
        for tp in self.assignment():
            if tp in busy or tp in self._paused_partitions or self._is_changelog_tp(tp):
                continue
            committed = self._committed_offset.get(tp)
            read = self._read_offset.get(tp)
            if committed is None or read is None or read < committed:
                continue  # nothing handed out past the commit (or never committed)
            if read == committed:
                # a seek sets the read offset to the committed one before anything is read:
                # only a stall if the log has more to give
                end = self.highwater(tp)
                if end is None or end <= committed:
                    continue
            acked = self._acked_index.get(tp, ())
            gap = self._gap.get(tp)
            if committed in acked or (gap is not None and gap.overlaps(committed)):
                continue  # the next commit moves past it
            channels = self.app.topics._tp_index.get(tp, ())
            if any(channel.queue.qsize() for channel in channels):
                continue  # still on its way to a stream
            lost[tp] = committed
        return lost

    @Service.timer(LOST_CHECK_SECONDS)
    async def _lost_record_check(self) -> None:
        await self.fetch_lost_again()

    async def fetch_lost_again(self) -> None:
        """One pass: seek back the partitions found lost at the same offset twice running."""
        suspects = self._suspects if self._suspects is not None else {}
        lost = self.lost_partitions()
        self._suspects = {tp: offset for tp, offset in lost.items() if suspects.get(tp) != offset}
        attempts = self._attempts if self._attempts is not None else {}
        self._attempts = attempts
        for tp, offset in lost.items():
            if suspects.get(tp) != offset:
                continue  # first sighting: it may be a moment's state; look again next time
            attempts[(tp, offset)] = attempts.get((tp, offset), 0) + 1
            if attempts[(tp, offset)] > MAX_REFETCHES:
                self.gaps_accepted = {*self.gaps_accepted, tp}
                log.error(
                    "%s[%d]: offset %d is still missing after %d fetches; the log has a hole "
                    "there (retention? transactions?): counting it as read from now on",
                    tp.topic, tp.partition, offset, MAX_REFETCHES,
                )  # fmt: skip
                after = [o for o in self._acked_index.get(tp, ()) if o > offset]
                # the hole runs up to the first offset processed after it
                await self._add_gap(tp, offset, min(after) - 1 if after else offset)
                continue
            try:
                await self.seek(tp, offset)
            except Exception as exc:  # revoked meanwhile: its next owner starts from commits
                log.warning("cannot seek %s[%d] to %d: %r", tp.topic, tp.partition, offset, exc)
                continue
            self.recovered += 1
            log.warning(
                "%s[%d]: offset %d was fetched but never processed; fetching again from it",
                tp.topic,
                tp.partition,
                offset,
            )


FEED_ATTRIBUTE = "shouwang_batch_feed"


def _partition_major(tp: Any) -> tuple[int, str]:
    return tp.partition, tp.topic


ROOM_WAIT_SECONDS = 0.1  # a full queue is looked at again this often (see `_room_for`)


class FetchedBatch:
    """Records of one fetched input partition (a chunk of at most the feed's limit), in offset
    order, as events: one item in a batch-taking stream's queue instead of one per record."""

    __slots__ = ("events", "generation_id")

    def __init__(self, events: list[Any], generation_id: int):
        self.events = events
        self.generation_id = generation_id

    def __len__(self) -> int:
        return len(self.events)


class BatchFeed:
    """A batch-taking stream's request for the direct hand-off (`take_batches`): at most
    `limit` records waiting in its queue; `taken` is set each time the stream takes a batch."""

    def __init__(self, limit: int):
        self.limit = limit
        self.taken = asyncio.Event()


def take_batches(queue: Any, limit: int) -> BatchFeed:
    """Ask the redelivering consumer to hand the records of the input partitions this queue
    alone subscribes to as `FetchedBatch` items; the stream over it must take them (see
    `worker.consume_batches`). Without this consumer nothing changes: records come one by one."""
    feed = getattr(queue, FEED_ATTRIBUTE, None)
    if feed is None:
        feed = BatchFeed(limit)
        setattr(queue, FEED_ATTRIBUTE, feed)
    return feed


def queued_records(queue: Any) -> int:
    """Records waiting in a stream's queue: a `FetchedBatch` counts its records."""
    pending = getattr(queue, "_queue", None) or ()  # asyncio.Queue's deque
    return sum(len(item) if type(item) is FetchedBatch else 1 for item in pending)


def raw_event_class(app: faust.App, channel: Any) -> Any:
    """The event class to build `channel`'s events with directly, when its decode only passes
    the bytes through: key and value typed bytes with faust's "raw" codec (our tables), where
    faust's decode (registry, codec, `want_bytes`, `app.create_event`: a coroutine and a
    settings lookup per record, ~30% of the worker's CPU recovering 1M households, B7)
    returns `app.conf.Event(app, message.key, message.value, message.headers, message)`.
    None for any other schema: those records go through `channel.decode`."""
    schema = channel.schema
    if (
        type(schema) is faust.Schema
        and schema.key_type is bytes
        and schema.value_type is bytes
        and schema.key_serializer == "raw"
        and schema.value_serializer == "raw"
        and type(app.serializers) is faust_registry.Registry
        and type(faust_codecs.get_codec("raw")) is faust_codecs.raw
        and len(faust_codecs.get_codec("raw").nodes) == 1
    ):
        return app.conf.Event
    return None


class DrainingProducer(faust_aiokafka.Producer):
    """faust's producer, whose flush really empties the buffer of table writes.

    Before committing offsets (at-least-once) faust flushes the producer, but its buffer's
    flush returns as soon as 0.1 s pass without a message sent, with changelog writes still
    waiting. The offsets are then committed ahead of the table: after a kill -9 the
    restarted worker restores a row without the events those offsets covered, and never
    reads them again (found by the fault harness: "monitoring state lacks 1 events" with
    every offset committed). This flush waits until the buffer is empty.
    """

    async def flush(self) -> None:
        while self.buffer.size:
            await self.buffer.flush()
        await super().flush()


class RedeliveringTransport(faust_aiokafka.Transport):
    Consumer = RedeliveringConsumer
    Producer = DrainingProducer


def install(app: faust.App) -> faust.App:
    """Give `app` the redelivering transport; call before anything touches `app.transport`."""
    app.transport = RedeliveringTransport(app.conf.broker_consumer, app)
    return app


def set_current_event(event: Any) -> None:
    """Make `event` the stream's current one for what follows in this task, as faust's stream
    does for each record it hands out (`Stream._py_aiter`): a table write goes to the changelog
    partition of the current event (`Table.partition_for_key`), so a batch's writes name the
    record they belong to."""
    _current_event.set(weakref.ref(event))
