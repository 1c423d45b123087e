"""Secrets at rest: webhook, ILN endpoint and platform secrets are stored encrypted with the
envelope key (LEADFLOW_SECRET_KEY); `leadflow secret-key rotate` re-encrypts them in batches;
a missing or wrong key fails with a message that says so."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.cli import main
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.secrets import (
    KEY_FILE_NAME,
    PREFIX,
    Keyring,
    SecretKeyError,
    current_keyring,
    generate_key,
    load_keyring,
    use_keyring,
)
from leadflow.models.accounts import Account
from tests.support.api import (
    ADMIN_TOKEN,
    BASE_URL,
    TEST_SECRET_KEY,
    app_client,
    auth,
    make_account,
    ok_json,
)
from tests.support.events import lead_event, post_event

STRIPE_SECRET = "whsec_stripe_0123456789abcdef0123456789"
PAYPRO_SECRET = "paypro-secret-key-0123456789"
PAYPRO_VALIDATION_KEY = "paypro-validation-key-0123456789"
OLD = Keyring.from_text(TEST_SECRET_KEY)

# Every column that holds a secret, as (table, key column, secret columns).
SECRET_COLUMNS = (
    ("accounts", "id", ("webhook_secret", "previous_webhook_secret")),
    ("iln_endpoints", "id", ("secret", "previous_secret")),
    ("integrations", "platform", ("secret", "validation_key")),
)


@pytest.fixture(autouse=True)
def _restore_keyring() -> Iterator[None]:
    keyring = current_keyring()
    yield
    use_keyring(keyring)


def _settings(db: Database, **changes: Any) -> Settings:
    return Settings(
        database_url=db.url,
        admin_token=ADMIN_TOKEN,
        base_url=BASE_URL,
        iln_allow_private=True,
        **changes,
    )


@pytest.fixture
async def client(db: Database, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """Overrides the root ``client``: ILN endpoints on any host (no DNS lookups)."""
    app = create_app(_settings(db), clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as c:
        yield c


async def _raw_secrets(db: Database) -> list[str]:
    """Every stored secret as the database holds it."""
    values: list[str] = []
    async with db.engine.connect() as conn:
        for table, _, columns in SECRET_COLUMNS:
            rows = await conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))  # noqa: S608
            values += [v for row in rows for v in row if v is not None]
    return values


async def _every_cell(db: Database) -> list[str]:
    cells: list[str] = []
    async with db.engine.connect() as conn:
        for table, _, _ in SECRET_COLUMNS:
            rows = await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            cells += [str(v) for row in rows for v in row]
    return cells


async def _credentials(client: httpx.AsyncClient, account: dict[str, Any]) -> set[str]:
    """Give the account every kind of secret, rotated once; returns them in clear."""
    clear = {account["webhook_secret"]}
    rotated = ok_json(await client.post("/v1/webhook-secret/rotate", headers=auth(account)))
    clear.add(rotated["webhook_secret"])
    account["webhook_secret"] = rotated["webhook_secret"]
    endpoint = await client.post(
        "/v1/iln/endpoints", json={"url": "https://hooks.example.net/x"}, headers=auth(account)
    )
    assert endpoint.status_code == 201, endpoint.text
    clear.add(endpoint.json()["secret"])
    path = f"/v1/iln/endpoints/{endpoint.json()['id']}/rotate-secret"
    clear.add(ok_json(await client.post(path, headers=auth(account)))["secret"])
    for platform, body in (
        ("stripe", {"secret": STRIPE_SECRET}),
        ("paypro", {"secret": PAYPRO_SECRET, "validation_key": PAYPRO_VALIDATION_KEY}),
    ):
        r = await client.put(f"/v1/integrations/{platform}", json=body, headers=auth(account))
        assert r.status_code == 200, r.text
        clear |= set(body.values())
    return clear


async def test_the_database_never_holds_a_secret_in_clear(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    clear = await _credentials(client, account)
    raw = await _raw_secrets(db)
    assert len(raw) == len(clear) == 7
    assert all(v.startswith(f"{PREFIX}{OLD.current_id}:") for v in raw), raw
    cells = await _every_cell(db)
    leaked = [c for c in cells for secret in clear if secret in c]
    assert leaked == []
    # The secrets still work: in clear to the code, encrypted in the database.
    ok_json(await post_event(client, account, lead_event(), clock=clock))


async def test_a_value_is_bound_to_its_column(
    client: httpx.AsyncClient, account: dict[str, Any], db: Database
) -> None:
    """A ciphertext copied into another column, or altered, does not decrypt."""
    await _credentials(client, account)
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE iln_endpoints SET secret = (SELECT webhook_secret FROM accounts)")
        )
    with pytest.raises(SecretKeyError, match=r"iln_endpoints\.secret.*does not decrypt"):
        await client.get("/v1/iln/endpoints", headers=auth(account))


async def test_a_wrong_key_fails_clearly(
    account: dict[str, Any],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stranger = Keyring.from_text(generate_key())
    use_keyring(stranger)
    async with db.session() as session:
        with pytest.raises(SecretKeyError) as raised:
            await session.get(Account, account["id"])
    message = str(raised.value)
    assert f"encrypted with key {OLD.current_id}" in message
    assert "LEADFLOW_SECRET_KEY does not hold" in message
    assert stranger.current_id in message

    # The rotation command stops at the first value it cannot read, and says why.
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", db.url)
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", generate_key())
    assert await asyncio.to_thread(main, ["secret-key", "rotate"]) == 1
    assert "LEADFLOW_SECRET_KEY does not hold" in capsys.readouterr().err
    use_keyring(OLD)
    async with db.session() as session:
        stored = await session.get(Account, account["id"])
        assert stored is not None and stored.webhook_secret == account["webhook_secret"]


async def test_rotation_reencrypts_every_secret_in_batches(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _credentials(client, account)
    others = [await make_account(client, f"Shop {n}") for n in range(4)]
    before = await _raw_secrets(db)
    assert all(v.startswith(f"{PREFIX}{OLD.current_id}:") for v in before)

    new_key = generate_key()
    new = Keyring.from_text(new_key)
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", db.url)
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", f"{new_key},{TEST_SECRET_KEY}")
    out = await asyncio.to_thread(_run_cli, "secret-key", "rotate", "--batch-size", "2", "--json")
    result = json.loads(out)
    assert result["key_id"] == new.current_id
    assert result["tables"] == {
        "accounts": {"scanned": 5, "rewritten": 5},
        "iln_endpoints": {"scanned": 1, "rewritten": 1},
        "integrations": {"scanned": 2, "rewritten": 2},
    }
    after = await _raw_secrets(db)
    assert len(after) == len(before)
    assert all(v.startswith(f"{PREFIX}{new.current_id}:") for v in after), after

    # The old key can go: the new one alone reads everything.
    app = create_app(
        _settings(db, secret_key=SecretStr(new_key)), clock=clock, db=db, auto_migrate=False
    )
    async with app_client(app) as new_client:
        for signer in (account, *others):
            ok_json(await post_event(new_client, signer, lead_event(), clock=clock))
        ok_json(await new_client.get("/v1/iln/endpoints", headers=auth(account)))

    # Nothing left to do: a second run rewrites nothing.
    again = json.loads(await asyncio.to_thread(_run_cli, "secret-key", "rotate", "--json"))
    assert {t: f["rewritten"] for t, f in again["tables"].items()} == {
        "accounts": 0,
        "iln_endpoints": 0,
        "integrations": 0,
    }


async def test_plaintext_legacy_rows_still_read_and_rotation_encrypts_them(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows written before encryption existed keep working as they are; the rotation
    command encrypts them."""
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET webhook_secret = :s"), {"s": account["webhook_secret"]}
        )
    assert await _raw_secrets(db) == [account["webhook_secret"]]
    ok_json(await post_event(client, account, lead_event(reference="legacy"), clock=clock))

    monkeypatch.setenv("LEADFLOW_DATABASE_URL", db.url)
    result = json.loads(await asyncio.to_thread(_run_cli, "secret-key", "rotate", "--json"))
    assert result["tables"]["accounts"] == {"scanned": 1, "rewritten": 1}
    (stored,) = await _raw_secrets(db)
    assert stored.startswith(f"{PREFIX}{OLD.current_id}:")
    assert account["webhook_secret"] not in stored
    ok_json(await post_event(client, account, lead_event(reference="encrypted"), clock=clock))


def _run_cli(*args: str) -> str:
    """``leadflow`` in this process (the test's environment), its standard output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    assert code == 0, out.getvalue()
    return out.getvalue()


# --- where the key comes from ---------------------------------------------------------------


def test_production_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADFLOW_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="LEADFLOW_SECRET_KEY is required in production"):
        Settings(environment="production", database_url="postgresql+asyncpg://db/leadflow")
    with pytest.raises(SecretKeyError, match="required in production"):
        load_keyring(
            Settings.model_construct(
                secret_key=None, environment="production", database_url="sqlite+aiosqlite:///x.db"
            )
        )
    key = generate_key()
    settings = Settings(environment="production", secret_key=SecretStr(key))
    assert load_keyring(settings).current_id == Keyring.from_text(key).current_id


def test_the_embedded_default_generates_its_key_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEADFLOW_SECRET_KEY", raising=False)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/data/leadflow.db")
    first = load_keyring(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = first.encrypt("whsec_abc", "accounts.webhook_secret")
    second = load_keyring(settings)  # the next start reads the same key
    assert second.keys == first.keys
    assert second.decrypt(stored, "accounts.webhook_secret") == "whsec_abc"
    # An in-memory database keeps no file (its data dies with the process).
    memory = load_keyring(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    assert memory.keys != first.keys
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", KEY_FILE_NAME]


def test_several_keys_decrypt_and_the_first_encrypts() -> None:
    old_key, new_key = generate_key(), generate_key()
    old = Keyring.from_text(old_key)
    stored = old.encrypt("secret", "c")
    both = Keyring.from_text(f" {new_key}, {old_key}\n")
    assert both.decrypt(stored, "c") == "secret"
    assert not both.is_current(stored)
    assert both.encrypt("secret", "c").startswith(
        f"{PREFIX}{Keyring.from_text(new_key).current_id}:"
    )
    assert both.decrypt("whsec_legacy", "c") == "whsec_legacy"  # plaintext legacy value


@pytest.mark.parametrize(
    "bad",
    ["", "  ", "not-base64!", "c2hvcnQ=", TEST_SECRET_KEY + "x,"],
)
def test_a_malformed_key_is_refused(bad: str) -> None:
    with pytest.raises(SecretKeyError, match="LEADFLOW_SECRET_KEY"):
        Keyring.from_text(bad)


def test_a_process_without_a_composition_root_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A script that uses the services without building the app or the worker."""
    key = generate_key()
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", key)
    use_keyring(None)
    assert current_keyring().current_id == Keyring.from_text(key).current_id
