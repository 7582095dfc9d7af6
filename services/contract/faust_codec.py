"""A faust codec over the contract's frames, so faust agents read and write the same bytes."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from services.contract.codec import Codec, Decoded

CODEC_NAME = "shouwang-avro"


class ContractFaustCodec(codecs.Codec):
    """Loads any contract frame into a `Decoded`; dumps a `Decoded` or (event_type, record).

    Agents that must dead-letter undecodable records read raw bytes and call `Codec.decode`
    themselves; this codec is for channels where every record is ours.
    """

    def __init__(self, contract: Codec, **kwargs: Any):
        super().__init__(**kwargs)
        self.contract = contract

    def _loads(self, s: bytes) -> Decoded:
        return self.contract.decode(s)

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, Decoded):
            return self.contract.encode(obj.event_type, obj.record)
        if isinstance(obj, tuple) and len(obj) == 2:
            event_type, record = obj
            return self.contract.encode(event_type, record)
        raise TypeError(
            f"{CODEC_NAME} dumps a Decoded or an (event_type, record) pair, not "
            f"{type(obj).__name__}"
        )

    def clone(self, *children: codecs.CodecT) -> ContractFaustCodec:
        return type(self)(self.contract, children=(*self.children, *children))


def register_faust_codec(contract: Codec) -> ContractFaustCodec:
    """Register the codec under `shouwang-avro` for `value_serializer=` and return it."""
    codec = ContractFaustCodec(contract)
    codecs.register(CODEC_NAME, codec)
    return codec
