"""Table writes whose changelog record goes straight to the producer, not through faust's buffer.

`table[key] = value` in an agent makes faust build a `FutureMessage` for the changelog record,
put it in the producer's buffer (`ProducerBuffer`, a queue a background task drains one record
at a time through the topic's `publish_message`: sensors, a second future, a callback), and
only then hand it to aiokafka. In the monitoring worker that path was ~9% of its CPU, a little
more than the aiokafka send itself (issue 19, B2: every household of a batch writes its row and
often its summary). `write` does what `Table.on_key_set` and the buffer do between them, in the
agent's own task, with the same outcome:

- the record goes to the changelog partition of the stream's current event
  (`Table.partition_for_key`), through `Outbox.send` (`ProducerOutbox`: the app's producer, or
  under exactly-once faust's transaction manager, as the buffer's `publish_message` uses);
- the store is written after the send returns (the record is in aiokafka's accumulator), so a
  send that raises leaves the table as it was and a retry sends again;
- once the broker has the record, its offset is the table's persisted offset as faust's
  `_on_changelog_sent` records it (RocksDB keeps it to recover from there);
- before an at-least-once commit faust flushes the producer (`DrainingProducer.flush`: the
  buffer, then aiokafka's accumulator), which holds these records too; under exactly-once they
  are in the partition's transaction.

Every write to a table must take this path or faust's, never both: the two queues are not
ordered with each other, and the changelog's last record for a key is what a recovery restores.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.streams import current_event

from services.platform.kafka.worker import Outbox

log = logging.getLogger(__name__)


async def write(table: Any, outbox: Outbox, key: bytes, value: bytes) -> None:
    """`table[key] = value` in an agent, the changelog record sent through `outbox`."""
    event = current_event()
    if event is None:  # as faust's `partition_for_key`
        raise TypeError("Cannot modify table key from outside of stream iteration")
    topic = table.changelog_topic.get_topic_name()
    delivered = await outbox.send(topic, key, value, event.message.partition)
    table.data[key] = value
    if delivered is not None:
        delivered.add_done_callback(lambda sent: _persisted(table, sent))


def _persisted(table: Any, sent: Any) -> None:
    if sent.cancelled():
        return
    exc = sent.exception()
    if exc is not None:  # as faust's `_on_published` for a changelog record: logged
        log.warning("changelog record of table %s not sent: %r", table.name, exc)
        return
    table._on_changelog_sent(sent)
