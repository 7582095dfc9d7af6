"""Connections by duty from the environment: each duty's URL, else the owner's; bad values are
refused by name without echoing a password; and what `db create-login` accepts."""

import pytest

from services.platform.config import Settings, SettingsError
from services.platform.postgres.commands import check_login
from services.platform.postgres.database import database_for

OWNER = "postgresql://owner:owner-secret@db:5432/shouwang"
READER = "postgresql://reader:reader-secret@db:5432/shouwang"


def test_without_duty_urls_every_duty_uses_the_owner_and_migrates() -> None:
    settings = Settings.from_env({"DATABASE_URL": OWNER})
    for duty in ("projector", "reader", "tokens"):
        database = database_for(settings, duty)
        assert (database.url, database.owner) == (OWNER, True)


def test_a_duty_url_is_used_and_does_not_migrate() -> None:
    settings = Settings.from_env({"DATABASE_URL": OWNER, "SHOUWANG_READER_DATABASE_URL": READER})
    reader = database_for(settings, "reader")
    assert (reader.url, reader.owner) == (READER, False)
    assert database_for(settings, "projector").owner  # the others still fall back


def test_a_duty_url_equal_to_the_owners_is_the_owner() -> None:
    settings = Settings.from_env({"DATABASE_URL": OWNER, "SHOUWANG_TOKENS_DATABASE_URL": OWNER})
    assert database_for(settings, "tokens").owner


def test_a_duty_url_without_an_owner_url_needs_no_local_stack() -> None:
    settings = Settings.from_env({"SHOUWANG_PROJECTOR_DATABASE_URL": READER})
    assert database_for(settings, "projector").url == READER


@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_URL",
        "SHOUWANG_PROJECTOR_DATABASE_URL",
        "SHOUWANG_READER_DATABASE_URL",
        "SHOUWANG_TOKENS_DATABASE_URL",
    ],
)
@pytest.mark.parametrize(
    "value, why",
    [
        ("mysql://u:hunter2-secret@db/x", "expected a postgresql:// URL"),
        ("u:hunter2-secret@db/x", "expected a postgresql:// URL"),
        ("postgresql://u:hunter2-secret@db/x y", "no spaces"),
    ],
)
def test_a_bad_url_is_refused_by_name_without_its_password(name: str, value: str, why: str):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name}: ") and why in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "name, password, why",
    [
        ("", "x" * 16, "a-z, 0-9 and _"),
        ("Reader", "x" * 16, "a-z, 0-9 and _"),
        ("9reader", "x" * 16, "a-z, 0-9 and _"),
        ("a" * 64, "x" * 16, "a-z, 0-9 and _"),
        ('r"; DROP', "x" * 16, "a-z, 0-9 and _"),
        ("shouwang_projector", "x" * 16, "reserved"),
        ("pg_read_all_data", "x" * 16, "reserved"),
        ("reader_1", "x" * 15, "at least 16"),
        ("reader_1", "x" * 16 + "\n", "printable"),
    ],
)
def test_create_login_refuses(name: str, password: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        check_login(name, password)


def test_create_login_accepts_a_plain_name_and_long_password() -> None:
    check_login("reader_api_1", "correct horse battery staple")
    check_login("a" * 63, "x" * 16)


def test_the_scram_verifier_matches_rfc_7677() -> None:
    # RFC 7677's example exchange: the server signature it shows is HMAC(ServerKey, auth
    # message), and the client's proof is ClientKey XOR HMAC(StoredKey, auth message).
    import base64
    import hashlib
    import hmac

    from services.platform.postgres.commands import scram_verifier

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt=salt, iterations=4096)
    scheme, rest = verifier.split("$", 1)
    head, keys = rest.split("$")
    assert scheme == "SCRAM-SHA-256" and head == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    )
    signature = hmac.new(server_key, auth.encode(), hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth.encode(), hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_the_verifier_is_of_the_saslprep_form_of_a_non_ascii_password() -> None:
    import base64
    import hashlib
    import hmac

    from services.platform.postgres.commands import check_login, scram_verifier

    salt = bytes(16)
    # Full-width letters and a no-break space normalise (NFKC, RFC 4013) to plain ones: a
    # client sending either form must match the stored verifier.
    wide = "\uff53\uff48\uff4f\uff55\u00a0守望密码-\uff21\uff22\uff23-2026"
    plain = "shou 守望密码-ABC-2026"
    check_login("shouwang_api_1", wide)
    check_login("shouwang_api_1", "密码" * 9)
    assert scram_verifier(wide, salt=salt) == scram_verifier(plain, salt=salt)
    assert scram_verifier(plain, salt=salt) != scram_verifier("shou 守望密码-ABC-2027", salt=salt)
    # Hashing the raw UTF-8 bytes (no SASLprep) would store another verifier, one no
    # SASLprep-ing client (asyncpg, libpq) could match.
    raw = hashlib.pbkdf2_hmac("sha256", wide.encode("utf-8"), salt, 4096)
    prepped = hashlib.pbkdf2_hmac("sha256", plain.encode("utf-8"), salt, 4096)
    server_key = scram_verifier(wide, salt=salt).rsplit(":", 1)[1]

    def server_key_of(salted: bytes) -> str:
        return base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode()

    assert server_key == server_key_of(prepped) != server_key_of(raw)


@pytest.mark.parametrize(
    "password, why",
    [
        ("\ue000" + "x" * 16, "private use"),  # not a control character, yet SASLprep refuses it
        ("\u0627" + "x" * 16, "bidi"),  # right-to-left mixed with left-to-right
    ],
)
def test_a_password_saslprep_prohibits_is_refused_by_name(password: str, why: str) -> None:
    from services.platform.postgres.commands import check_login

    with pytest.raises(SettingsError, match=f"password: not allowed by SASLprep.*{why}"):
        check_login("shouwang_api_1", password)
