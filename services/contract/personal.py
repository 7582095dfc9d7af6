"""Sealing personal sub-records per subject (AES-SIV, RFC 5297), and wrapping data keys: pure.

A registry event's `personal` sub-record is sealed with its subject's data key (a household or a
cadre) into `personal_sealed`; the key lives outside the log, so deleting it makes every sealed
copy in the permanent log unreadable (crypto-shredding) while the rest of the event stays.

Sealing is deterministic on purpose: the same event sealed twice gives the same bytes, so
re-sending an event stays an exact re-send. The construction is AES-SIV (RFC 5297, AEAD
AES-SIV-CMAC-512, `cryptography`'s AESSIV), a standard deterministic AEAD that reveals only
whether two inputs were identical; its 64-byte key is derived from the subject's 32-byte data
key with HKDF-SHA256 (RFC 5869). The associated data, given to SIV as separate components, binds
a sealed blob to its subject and event: a blob copied into another household's or another
event's record does not open.

The format is named by `algorithm` in each sealed record. `FORMAT_SIV` is what is written;
`FORMAT_GCM_V1` (AES-256-GCM with an HMAC-derived synthetic nonce, written before AES-SIV) is only
opened, because the log is permanent and keeps records sealed that way.

Error messages name the subject kind, event and key id, never a plaintext value or key bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.contract.errors import ContractError

FORMAT_SIV = "AEAD_AES_SIV_CMAC_512/HKDF-SHA256"
FORMAT_GCM_V1 = "AES-256-GCM/HMAC-SHA256-NONCE"  # opened, never written any more
ALGORITHM = FORMAT_SIV  # what `seal` writes
FORMATS = (FORMAT_SIV, FORMAT_GCM_V1)
KEY_BYTES = 32
NONCE_BYTES = 12  # of the key wrapping, and of FORMAT_GCM_V1 records
SIV_BYTES = 16
WRAP_ALGORITHM = "AES-256-GCM"


@dataclass(frozen=True)
class Subject:
    """Whose personal data: `kind` is household or cadre, `subject_id` the record's key."""

    kind: str
    subject_id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id}"


@dataclass(frozen=True)
class PersonalField:
    """Where an event type keeps personal data and which field names its subject."""

    event_type: str
    subject_kind: str
    subject_field: str

    def subject_of(self, record: dict[str, Any]) -> Subject:
        return Subject(self.subject_kind, str(record[self.subject_field]))


HOUSEHOLD = "household"
CADRE = "cadre"
PERSONAL_FIELDS: dict[str, PersonalField] = {
    f.event_type: f
    for f in (
        PersonalField("shouwang.events.HouseholdRegistryRecorded", HOUSEHOLD, "household_id"),
        PersonalField("shouwang.events.CadreRegistryRecorded", CADRE, "cadre_id"),
    )
}
SUBJECT_KINDS = (HOUSEHOLD, CADRE)


@dataclass(frozen=True)
class DataKey:
    """A subject's data key: `key_id` (a UUID, stored in sealed records) and 32 secret bytes."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"a data key has {KEY_BYTES} bytes, not {len(self.secret)}")

    def __repr__(self) -> str:  # never print the secret
        return f"DataKey(key_id={self.key_id!r})"


class SealError(ContractError):
    """A personal sub-record that cannot be sealed or opened; the message holds no values."""


class WrongKey(SealError):
    """The blob was sealed under another key id than the one offered."""


class Tampered(SealError):
    """Authentication failed: wrong subject or event, wrong key, or changed bytes."""


def associated_data(subject: Subject, event_id: str) -> list[bytes]:
    """What a sealed blob is bound to, as SIV's associated data components: the format,
    subject kind, subject id and event id (separate components, so no two differ only in where
    one ends and the next begins)."""
    return [
        FORMAT_SIV.encode("ascii"),
        subject.kind.encode("utf-8"),
        subject.subject_id.encode("utf-8"),
        str(event_id).encode("utf-8"),
    ]


def plaintext_of(personal: dict[str, Any]) -> bytes:
    """Canonical JSON of a personal sub-record (sorted keys, no spaces): what gets sealed."""
    if not isinstance(personal, dict):
        raise SealError(f"a personal sub-record is an object, not {type(personal).__name__}")
    for name, value in personal.items():
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            # a list of records of text (the members' names and ID numbers, registry v3)
            if isinstance(name, str) and isinstance(value, list) and all(
                isinstance(item, dict)
                and all(isinstance(k, str) and (v is None or isinstance(v, str))
                        for k, v in item.items())
                for item in value
            ):  # fmt: skip
                continue
            raise SealError(
                f"personal field {name!s:.40}: only text, null or a list of records of text "
                "can be sealed"
            )
    return json.dumps(personal, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def seal(personal: dict[str, Any], subject: Subject, event_id: str, key: DataKey) -> dict:
    """The SealedPersonal record for `personal`, bound to `subject` and `event_id`.

    `nonce` is empty: AES-SIV needs none, its synthetic IV leads the ciphertext.
    """
    if isinstance(personal, dict):
        # an empty list (registry v3's members' data, a default) is not sealed: a record
        # without members seals and opens exactly as before version 3
        personal = {k: v for k, v in personal.items() if v != []}
    ciphertext = _siv(key).encrypt(plaintext_of(personal), associated_data(subject, event_id))
    return {"key_id": key.key_id, "algorithm": FORMAT_SIV, "nonce": b"", "ciphertext": ciphertext}


def unseal(sealed: dict[str, Any], subject: Subject, event_id: str, key: DataKey) -> dict:
    """The personal sub-record inside `sealed` (either format); WrongKey / Tampered / SealError
    otherwise."""
    where = f"personal data of {subject}, event {event_id}"
    algorithm = sealed.get("algorithm")
    if algorithm not in FORMATS:
        raise SealError(f"{where}: unknown algorithm {str(algorithm)[:40]!r}")
    if sealed.get("key_id") != key.key_id:
        raise WrongKey(f"{where}: sealed under key {sealed.get('key_id')}, not {key.key_id}")
    nonce, ciphertext = sealed.get("nonce"), sealed.get("ciphertext")
    if not isinstance(ciphertext, bytes):
        raise Tampered(f"{where}: the ciphertext is not bytes")
    try:
        if algorithm == FORMAT_SIV:
            if nonce != b"":
                raise Tampered(f"{where}: an AES-SIV record has an empty nonce")
            if len(ciphertext) < SIV_BYTES:
                raise Tampered(f"{where}: the ciphertext is shorter than its {SIV_BYTES}-byte IV")
            plaintext = _siv(key).decrypt(ciphertext, associated_data(subject, event_id))
        else:
            if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
                raise Tampered(f"{where}: the nonce is not {NONCE_BYTES} bytes")
            plaintext = AESGCM(_gcm_v1_key(key)).decrypt(
                nonce, ciphertext, _gcm_v1_associated_data(subject, event_id)
            )
    except InvalidTag:
        raise Tampered(
            f"{where}: does not authenticate under key {key.key_id} (sealed for another "
            "subject or event, or the bytes were changed)"
        ) from None
    try:
        personal = json.loads(plaintext.decode("utf-8"))
    except ValueError:
        raise SealError(f"{where}: the opened plaintext is not JSON") from None
    if not isinstance(personal, dict):
        raise SealError(f"{where}: the opened plaintext is not an object")
    return personal


def seal_record(record: dict[str, Any], event_type: str, key: DataKey | None) -> dict[str, Any]:
    """A copy of `record` with its `personal` sub-record sealed into `personal_sealed`.

    A record without personal data (null) needs no key: both fields stay null.
    """
    spec = PERSONAL_FIELDS[event_type]
    personal = record.get("personal")
    if personal is not None and key is None:
        raise SealError(f"personal data of {spec.subject_of(record)} needs a key to be sealed")
    sealed = dict(record)
    sealed["personal"] = None
    sealed["personal_sealed"] = (
        None
        if personal is None
        else seal(personal, spec.subject_of(record), str(record["event_id"]), key)
    )
    return sealed


def wrap_key(master: bytes, subject: Subject, key: DataKey, nonce: bytes) -> bytes:
    """`nonce || AES-256-GCM(master, secret)`, bound to the subject and key id; for storage."""
    _check_master(master)
    return nonce + AESGCM(master).encrypt(nonce, key.secret, _wrap_aad(subject, key.key_id))


def unwrap_key(master: bytes, subject: Subject, key_id: str, wrapped: bytes) -> DataKey:
    """The data key stored as `wrapped`; Tampered when the master key or the row is wrong."""
    _check_master(master)
    nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    try:
        secret = AESGCM(master).decrypt(nonce, body, _wrap_aad(subject, key_id))
    except (InvalidTag, ValueError):
        raise Tampered(
            f"data key {key_id} of {subject} does not unwrap: the master key is not the one "
            "that wrapped it, or the stored row was changed"
        ) from None
    return DataKey(key_id, secret)


def master_key_id(master: bytes) -> str:
    """A short public fingerprint of the master key, stored beside wrapped keys."""
    _check_master(master)
    return hashlib.sha256(b"shouwang personal master key id\0" + master).hexdigest()[:16]


def _wrap_aad(subject: Subject, key_id: str) -> bytes:
    return json.dumps([WRAP_ALGORITHM, subject.kind, subject.subject_id, key_id]).encode("utf-8")


def _check_master(master: bytes) -> None:
    if not isinstance(master, bytes) or len(master) != KEY_BYTES:
        raise SealError(f"the master key must be {KEY_BYTES} bytes")


def _siv(key: DataKey) -> AESSIV:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=2 * KEY_BYTES,  # AES-SIV-CMAC-512: a CMAC key and a CTR key of 256 bits each
        salt=None,
        info=b"shouwang personal " + FORMAT_SIV.encode("ascii"),
    ).derive(key.secret)
    return AESSIV(derived)


def _gcm_v1_associated_data(subject: Subject, event_id: str) -> bytes:
    return json.dumps(
        [FORMAT_GCM_V1, subject.kind, subject.subject_id, str(event_id)], ensure_ascii=False
    ).encode("utf-8")


def _gcm_v1_key(key: DataKey) -> bytes:
    return hmac.new(key.secret, b"shouwang personal encryption", hashlib.sha256).digest()
