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

Our agents are idempotent (the fold ignores a seen event id, emitted ids are
deterministic, the support pool keeps decisions by id), so a record delivered twice is
harmless and a record dropped is a loss. This consumer therefore clears the stale read
offset when a record below it arrives, so faust delivers it (and acks it: its ack index
ignores an offset acked before). Everything else is faust's own code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)


class RedeliveringConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, delivering re-fetched records instead of dropping them."""

    redelivered = 0  # records that faust would have dropped (for tests and the log)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 (faust's signature)
        read_offsets = self._read_offset
        async for tp, message in super().getmany(timeout):
            read = read_offsets.get(tp)
            if read is not None and message.offset < read:
                # None makes the fetch loop deliver this record and skip its gap check,
                # which is right: the offsets from here on are read again in order.
                read_offsets[tp] = None
                self.redelivered += 1
                log.info(
                    "re-delivering %s[%d] from offset %d (faust had read up to %d)",
                    tp.topic,
                    tp.partition,
                    message.offset,
                    read,
                )
            yield tp, message


class RedeliveringTransport(faust_aiokafka.Transport):
    Consumer = RedeliveringConsumer


def install(app: faust.App) -> faust.App:
    """Give `app` the redelivering transport; call before anything touches `app.transport`."""
    app.transport = RedeliveringTransport(app.conf.broker_consumer, app)
    return app
