"""Sealing personal sub-records: round trips, bindings, tampering, key wrapping, old events, and
records sealed in the format before AES-SIV (a fixture the old code wrote)."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import fastavro
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from hypothesis import given
from hypothesis import strategies as st

from services.contract.codec import MAGIC, Codec
from services.contract.personal import (
    ALGORITHM,
    FORMAT_GCM_V1,
    FORMAT_SIV,
    KEY_BYTES,
    NONCE_BYTES,
    PERSONAL_FIELDS,
    DataKey,
    SealError,
    Subject,
    Tampered,
    WrongKey,
    master_key_id,
    seal,
    seal_record,
    unseal,
    unwrap_key,
    wrap_key,
)
from services.contract.schemas import load_version
from tests import records

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
CODEC = Codec.default()
HOUSEHOLD = Subject("household", "H-500228-0001")
EVENT = "7f1c1d1e-7d4b-4a8e-9b55-0d6d1f6b2c11"
WHEN = records.at("2020-04-01")
PERSONAL = {"head_name": "张三丰", "citizen_id": "500228197801010011", "phone": "13800138000"}
PINNED_SIV_HEX = "410c311c1341aa18538714ee4edd7ddeae1ae0738f59694bd591641dc8b9d1f970bc70470162"
# Registry frames sealed by the code before AES-SIV (AES-256-GCM, HMAC nonce), as they lie in logs.
SEALED_V1 = json.loads((Path(__file__).parent / "sealed_v1.json").read_text(encoding="utf-8"))


def key(name: str = "k1") -> DataKey:
    return DataKey(
        str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        bytes(range(32)) if name == "k1" else os.urandom(32),
    )


def registry_record(**fields) -> dict:
    _, record = records.registry(
        HOUSEHOLD.subject_id, WHEN, event_id=EVENT, **{"personal": dict(PERSONAL), **fields}
    )
    return record


def test_seal_and_unseal_round_trip_without_plaintext_in_the_blob():
    sealed = seal(PERSONAL, HOUSEHOLD, EVENT, key())
    assert sealed["algorithm"] == ALGORITHM == FORMAT_SIV
    assert sealed["key_id"] == key().key_id
    assert sealed["nonce"] == b""  # AES-SIV: the synthetic IV leads the ciphertext
    for value in PERSONAL.values():
        assert value.encode("utf-8") not in sealed["ciphertext"]
    assert unseal(sealed, HOUSEHOLD, EVENT, key()) == PERSONAL


def test_sealing_is_deterministic_per_event_and_differs_across_events():
    # A re-sent event must be byte-identical (idempotency compares content)...
    assert seal(PERSONAL, HOUSEHOLD, EVENT, key()) == seal(PERSONAL, HOUSEHOLD, EVENT, key())
    # ...while the same person in another event gets another IV and ciphertext.
    other = seal(PERSONAL, HOUSEHOLD, str(uuid.uuid4()), key())
    first = seal(PERSONAL, HOUSEHOLD, EVENT, key())
    assert other["ciphertext"][:16] != first["ciphertext"][:16]
    assert other["ciphertext"][16:] != first["ciphertext"][16:]


def test_the_sealed_bytes_are_rfc_5297_aes_siv_under_an_hkdf_derived_key():
    # Pinned: a record sealed today must open in ten years, so the format may not drift.
    sealed = seal({"head_name": "张三"}, HOUSEHOLD, EVENT, key())
    assert sealed["ciphertext"].hex() == (PINNED_SIV_HEX), (
        "the AES-SIV format changed: records already in the log would no longer open"
    )
    # And it is plain AES-SIV: the derived key and the components open it without our code.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(hashes.SHA256(), 64, None, b"shouwang personal " + FORMAT_SIV.encode()).derive(
        key().secret
    )
    components = [FORMAT_SIV.encode(), b"household", HOUSEHOLD.subject_id.encode(), EVENT.encode()]
    opened = AESSIV(derived).decrypt(sealed["ciphertext"], components)
    assert json.loads(opened) == {"head_name": "张三"}


@pytest.mark.parametrize(
    ("subject", "event_id"),
    [
        (Subject("household", "H-500228-0002"), EVENT),  # moved to another household
        (Subject("cadre", HOUSEHOLD.subject_id), EVENT),  # or another kind of subject
        (HOUSEHOLD, "00000000-0000-4000-8000-000000000000"),  # or another event
    ],
)
def test_a_blob_does_not_open_for_another_subject_or_event(subject, event_id):
    sealed = seal(PERSONAL, HOUSEHOLD, EVENT, key())
    with pytest.raises(Tampered, match="does not authenticate") as caught:
        unseal(sealed, subject, event_id, key())
    assert_no_secrets(str(caught.value))


@pytest.mark.parametrize("where", [0, 15, 16, -1])  # in the IV, and in the ciphertext
def test_changed_bytes_fail_with_a_clear_error_and_no_values(where):
    sealed = seal(PERSONAL, HOUSEHOLD, EVENT, key())
    changed = bytearray(sealed["ciphertext"])
    changed[where] ^= 0x01
    with pytest.raises(Tampered) as caught:
        unseal({**sealed, "ciphertext": bytes(changed)}, HOUSEHOLD, EVENT, key())
    message = str(caught.value)
    assert HOUSEHOLD.subject_id in message and EVENT in message
    assert_no_secrets(message)


def test_another_key_id_or_algorithm_or_a_short_nonce_is_named():
    sealed = seal(PERSONAL, HOUSEHOLD, EVENT, key())
    with pytest.raises(WrongKey, match="sealed under key"):
        unseal(sealed, HOUSEHOLD, EVENT, key("k2"))
    with pytest.raises(SealError, match="unknown algorithm"):
        unseal({**sealed, "algorithm": "ROT13"}, HOUSEHOLD, EVENT, key())
    with pytest.raises(Tampered, match="empty nonce"):
        unseal({**sealed, "nonce": b"\0" * 12}, HOUSEHOLD, EVENT, key())
    with pytest.raises(Tampered, match="shorter than its 16-byte IV"):
        unseal({**sealed, "ciphertext": b"\0" * 15}, HOUSEHOLD, EVENT, key())
    same_id_other_secret = DataKey(key().key_id, os.urandom(KEY_BYTES))
    with pytest.raises(Tampered):
        unseal(sealed, HOUSEHOLD, EVENT, same_id_other_secret)


def test_only_text_fields_can_be_sealed_and_the_error_holds_no_value():
    with pytest.raises(SealError, match="head_name: only text, null or a list") as caught:
        seal({"head_name": 12345678}, HOUSEHOLD, EVENT, key())
    assert "12345678" not in str(caught.value)
    with pytest.raises(SealError, match="is an object"):
        seal(["x"], HOUSEHOLD, EVENT, key())  # type: ignore[arg-type]


def test_a_data_key_never_shows_its_secret():
    secret = bytes(range(32))
    assert secret.hex() not in repr(DataKey("k", secret))
    assert str(list(secret)) not in repr(DataKey("k", secret))
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey("k", b"short")


@given(
    st.fixed_dictionaries(
        {"head_name": st.text(min_size=1), "citizen_id": st.text(min_size=1)},
        optional={"phone": st.none() | st.text()},
    ),
    st.text(min_size=1, max_size=40),
    st.uuids().map(str),
)
def test_any_personal_record_round_trips(personal, subject_id, event_id):
    subject = Subject("household", subject_id)
    assert unseal(seal(personal, subject, event_id, key()), subject, event_id, key()) == personal


def test_wrapped_keys_open_only_with_their_master_subject_and_id():
    master, data = os.urandom(KEY_BYTES), key("k3")
    wrapped = wrap_key(master, HOUSEHOLD, data, os.urandom(NONCE_BYTES))
    assert data.secret not in wrapped
    assert unwrap_key(master, HOUSEHOLD, data.key_id, wrapped) == data
    for attempt in (
        lambda: unwrap_key(os.urandom(KEY_BYTES), HOUSEHOLD, data.key_id, wrapped),
        lambda: unwrap_key(master, Subject("household", "H-other"), data.key_id, wrapped),
        lambda: unwrap_key(master, HOUSEHOLD, str(uuid.uuid4()), wrapped),
        lambda: unwrap_key(master, HOUSEHOLD, data.key_id, wrapped[:-1]),
    ):
        with pytest.raises(Tampered, match="does not unwrap") as caught:
            attempt()
        assert data.secret.hex() not in str(caught.value)
    with pytest.raises(SealError, match="32 bytes"):
        wrap_key(b"short", HOUSEHOLD, data, os.urandom(NONCE_BYTES))
    assert master_key_id(master) == master_key_id(master) != master_key_id(os.urandom(32))


def test_a_sealed_registry_record_encodes_without_plaintext_and_opens_after_decoding():
    record = seal_record(registry_record(), "shouwang.events.HouseholdRegistryRecorded", key())
    assert record["personal"] is None
    frame = CODEC.encode("HouseholdRegistryRecorded", record)
    for value in PERSONAL.values():
        assert value.encode("utf-8") not in frame
    decoded = CODEC.decode(frame).record
    assert unseal(decoded["personal_sealed"], HOUSEHOLD, EVENT, key()) == PERSONAL


def test_a_record_without_personal_data_needs_no_key():
    record = seal_record(
        registry_record(personal=None), "shouwang.events.HouseholdRegistryRecorded", None
    )
    assert record["personal"] is None and record["personal_sealed"] is None
    with pytest.raises(SealError, match="needs a key"):
        seal_record(registry_record(), "shouwang.events.HouseholdRegistryRecorded", None)


@pytest.mark.parametrize(
    ("history", "event_type", "record"),
    [
        ("household_registry.v1.avsc", "HouseholdRegistryRecorded", registry_record()),
        (
            "cadre_registry.v1.avsc",
            "CadreRegistryRecorded",
            records.cadre(
                "C-1", WHEN, event_id=EVENT, village=None, personal={"name": "李四", "phone": None}
            )[1],
        ),
    ],
)
def test_old_events_with_plaintext_personal_data_still_decode(history, event_type, record):
    old = load_version(json.loads((SCHEMAS / "history" / history).read_text()), history)
    assert old.fingerprint != CODEC.registry.schema(event_type).fingerprint
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, record)
    decoded = CODEC.decode(MAGIC + old.fingerprint + body.getvalue())
    # read as today's: registry v3's members' personal data defaults to none
    added = {"members": []} if event_type == "HouseholdRegistryRecorded" else {}
    assert decoded.record["personal"] == {**record["personal"], **added}
    assert decoded.record["personal_sealed"] is None


@pytest.mark.parametrize("fixture", SEALED_V1["records"], ids=lambda r: r["event_type"])
def test_records_sealed_in_the_format_before_aes_siv_still_open(fixture):
    old_key = DataKey(SEALED_V1["key_id"], bytes.fromhex(SEALED_V1["key_hex"]))
    record = CODEC.decode(bytes.fromhex(fixture["frame_hex"])).record
    sealed = record["personal_sealed"]
    assert sealed["algorithm"] == FORMAT_GCM_V1 == SEALED_V1["algorithm"]
    assert len(sealed["nonce"]) == NONCE_BYTES
    spec = PERSONAL_FIELDS[fixture["event_type"]]
    subject, event_id = spec.subject_of(record), str(record["event_id"])
    assert unseal(sealed, subject, event_id, old_key) == fixture["personal"]
    # Still bound to subject and event, and still authenticated.
    with pytest.raises(Tampered, match="does not authenticate"):
        unseal(sealed, Subject(subject.kind, "someone-else"), event_id, old_key)
    changed = bytearray(sealed["ciphertext"])
    changed[0] ^= 1
    with pytest.raises(Tampered):
        unseal({**sealed, "ciphertext": bytes(changed)}, subject, event_id, old_key)
    with pytest.raises(Tampered, match="nonce is not 12 bytes"):
        unseal({**sealed, "nonce": b"\0" * 5}, subject, event_id, old_key)
    # The same key seals anew only in the new format, and both open.
    resealed = seal_record({**record, "personal": fixture["personal"]}, spec.event_type, old_key)
    assert resealed["personal_sealed"]["algorithm"] == FORMAT_SIV
    assert unseal(resealed["personal_sealed"], subject, event_id, old_key) == fixture["personal"]


def assert_no_secrets(message: str) -> None:
    for value in PERSONAL.values():
        assert value not in message
    assert bytes(range(32)).hex() not in message
