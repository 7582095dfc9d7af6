"""The benchmark's data: the synthetic county at a fixed seed, encoded once as Avro frames."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.tools.simulation import Event, SimulationParameters, generate

SEED = 2020

# The shape of an aiokafka ConsumerRecord / audit LogRecord, for feeding pure code in memory.
Record = namedtuple("Record", "topic partition offset timestamp key value")


@dataclass
class Dataset:
    scale: float
    events: list[Event]
    frames: list[bytes]  # events[i] encoded

    def records(self, topics: set[str] | None = None, partitions: int = 1) -> list[Record]:
        """The events as log records of `topics` (all when None), offsets counted per topic.

        Offsets are per topic (one partition each in memory); enough for code that keys
        idempotence on (topic, partition, offset).
        """
        offsets: dict[str, int] = {}
        out = []
        for event, frame in zip(self.events, self.frames, strict=True):
            topic = event.topic.name
            if topics is not None and topic not in topics:
                continue
            offset = offsets.get(topic, 0)
            offsets[topic] = offset + 1
            ms = int(event.record["recorded_at"].timestamp() * 1000)
            out.append(Record(topic, 0, offset, ms, event.key.encode(), frame))
        return out


def load(scale: float, codec: Codec, seed: int = SEED) -> Dataset:
    events = list(generate(SimulationParameters(seed=seed, scale=scale)))
    frames = [codec.encode(e.event_type, e.record) for e in events]
    return Dataset(scale, events, frames)


LAYOUT = TopicLayout()


async def preload(bootstrap: str, data: Dataset, codec: Codec, chunk: int = 5000) -> int:
    """Produce every event to its input topic (acks=all, idempotent), as `shouwang simulate
    --direct` would; returns how many were acknowledged."""
    from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
    from services.platform.personal.sealer import PersonalSealer
    from services.tools.simulation.sinks.kafka import KafkaSink

    # Keys in memory, thrown away after the run: nobody reads the bench's fake personal data,
    # and sealing it still costs what it costs in production.
    sealer = PersonalSealer(CachedKeys(InMemoryKeyStore()))
    sink = KafkaSink(bootstrap, LAYOUT, codec, create_topics=False, sealer=sealer)
    await sink.start()
    try:
        for i in range(0, len(data.events), chunk):
            await sink.write(data.events[i : i + chunk])
    finally:
        await sink.close()
    return sum(sink.produced.values())
