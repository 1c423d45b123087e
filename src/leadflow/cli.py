"""The ``leadflow`` command."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from leadflow.config import Settings
from leadflow.kit.errors import AppError
from leadflow.kit.logs import configure_logging
from leadflow.kit.progress import Progress
from leadflow.kit.secrets import SecretKeyError

if TYPE_CHECKING:
    from leadflow.kit.db import Database

T = TypeVar("T")

OPENAPI_PATH = Path("openapi") / "openapi.json"


def _serve(settings: Settings, args: argparse.Namespace, *, run_worker: bool) -> int:
    import uvicorn

    from leadflow.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    # The links leadflow prints and sends (the setup link first) lead where it listens.
    settings = settings.model_copy(update={"base_url": _base_url(settings, host, port)})
    app = create_app(settings, run_worker=run_worker, announce_setup=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        log_config=None,  # uvicorn's lines go through configure_logging's handler
    )
    return 0


def _base_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """LEADFLOW_BASE_URL when it is set; else where ``leadflow serve`` listens (its host and
    port, from the command line or LEADFLOW_HOST / LEADFLOW_PORT)."""
    if "base_url" in settings.model_fields_set:
        return settings.base_url
    host = host or settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port or settings.port}"


def _migrate(settings: Settings) -> int:
    from leadflow.kit.db import create_engine
    from leadflow.kit.migrate import upgrade

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"database migrated to head ({_redacted(settings.database_url)})")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def openapi_document() -> str:
    from leadflow.app import create_app

    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _openapi(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(openapi_document(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database (an embedded SQLite one migrated first),
    with the envelope key of the secrets at rest installed."""
    from leadflow.kit.db import Database
    from leadflow.kit.migrate import upgrade
    from leadflow.kit.secrets import load_keyring, use_keyring

    use_keyring(load_keyring(settings))
    db = Database(settings.database_url)
    try:
        if settings.is_sqlite:
            await upgrade(db.engine)
        return await work(db)
    finally:
        await db.dispose()


def _create_account(settings: Settings, args: argparse.Namespace) -> int:
    from leadflow.accounts.service import create_account
    from leadflow.kit.clock import SystemClock

    async def run(db: Database) -> dict[str, str]:
        async with db.session() as session:
            created = await create_account(session, args.name, SystemClock().now())
        return {
            "id": created.account.id,
            "name": created.account.name,
            "api_key": created.api_key,
            "webhook_secret": created.account.webhook_secret,
        }

    result = asyncio.run(_with_database(settings, run))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"account id:      {result['id']}")
        print(f"api key:         {result['api_key']}")
        print(f"webhook secret:  {result['webhook_secret']}")
        print("Store the key and the secret now: they are not shown again.", file=sys.stderr)
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from leadflow.accounts import service
    from leadflow.kit.clock import SystemClock
    from leadflow.kit.pagination import MAX_LIMIT

    async def run(db: Database) -> Any:
        now = SystemClock().now()
        async with db.session() as session:
            account = await service.get_account(session, args.account_id)
            if args.keys_command == "create":
                return (
                    await service.create_api_key(session, account.id, args.name, now)
                ).model_dump(mode="json")
            if args.keys_command == "revoke":
                await service.revoke_api_key(session, account.id, args.key_id, now)
                return None
            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await service.list_api_keys(session, account.id, MAX_LIMIT, cursor)
                items += [k.model_dump(mode="json") for k in page.items]
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor

    result = asyncio.run(_with_database(settings, run))
    if args.keys_command == "revoke":
        print(f"revoked {args.key_id}")
    elif args.json:
        print(json.dumps(result))
    elif args.keys_command == "create":
        print(f"key id:   {result['id']}")
        print(f"api key:  {result['key']}")
        print("Store the key now: it is not shown again.", file=sys.stderr)
    else:
        for key in result:
            print(
                f"{key['id']}  {key['prefix']}…  {key['name']!r}  created {key['created_at']}"
                f"  last used {key['last_used_at'] or 'never'}"
            )
    return 0


def _rotate_webhook_secret(settings: Settings, args: argparse.Namespace) -> int:
    from leadflow.accounts import service
    from leadflow.kit.clock import SystemClock

    hours = (
        settings.webhook_secret_rotation_hours if args.overlap_hours is None else args.overlap_hours
    )
    overlap = dt.timedelta(hours=hours)

    async def run(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            account = await service.get_account(session, args.account_id)
            rotated = await service.rotate_webhook_secret(
                session, account, SystemClock().now(), overlap
            )
        return rotated.model_dump(mode="json")

    result = asyncio.run(_with_database(settings, run))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"webhook secret:  {result['webhook_secret']}")
        expires = result["previous_secret_expires_at"]
        print(
            f"previous secret: {'accepted until ' + expires if expires else 'no longer accepted'}"
        )
        print("Store the secret now: it is not shown again.", file=sys.stderr)
    return 0


def _rotate_secret_key(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret under the first envelope key, one batch per
    transaction (resumable: a value already under the current key is skipped)."""
    from leadflow.accounts.service import reencrypt_account_secrets
    from leadflow.integrations.service import reencrypt_integration_secrets
    from leadflow.kit.secrets import current_keyring
    from leadflow.notifications.service import reencrypt_endpoint_secrets

    tables = (
        ("accounts", reencrypt_account_secrets),
        ("iln_endpoints", reencrypt_endpoint_secrets),
        ("integrations", reencrypt_integration_secrets),
    )

    async def run(db: Database) -> dict[str, dict[str, int]]:
        from sqlalchemy import func, select
        from sqlalchemy import table as table_named

        counts: dict[str, dict[str, int]] = {}
        for table, reencrypt in tables:
            async with db.reader() as session:
                total = await session.scalar(select(func.count()).select_from(table_named(table)))
            scanned = rewritten = 0
            after = None
            with Progress(f"re-encrypting {table}", int(total or 0), unit="rows") as progress:
                while True:
                    async with db.session() as session:
                        batch = await reencrypt(session, after, args.batch_size)
                    scanned += batch.scanned
                    rewritten += batch.rewritten
                    progress.update(scanned)
                    if batch.last_key is None or batch.scanned < args.batch_size:
                        break
                    after = batch.last_key
            counts[table] = {"scanned": scanned, "rewritten": rewritten}
        return counts

    counts = asyncio.run(_with_database(settings, run))
    key_id = current_keyring().current_id
    if args.json:
        print(json.dumps({"key_id": key_id, "tables": counts}))
    else:
        for table, figures in counts.items():
            print(f"{table}: {figures['rewritten']} of {figures['scanned']} rows re-encrypted")
        print(f"every stored secret is now under key {key_id}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Every check on one line (or a JSON document); 1 when any check fails."""
    from leadflow.kit.doctor import Check, Status, load_settings, run_checks

    loaded = load_settings()
    checks = (
        [loaded] if isinstance(loaded, Check) else asyncio.run(run_checks(loaded, args.timeout))
    )
    failed = any(check.status == Status.FAIL for check in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [check.as_dict() for check in checks]}))
    else:
        for check in checks:
            print(check.line())
    return 1 if failed else 0


def _login_link(settings: Settings, args: argparse.Namespace) -> int:
    """A single-use link that signs in to the account's dashboard (for 15 minutes)."""
    from leadflow.accounts.sessions import LOGIN_LINK_LIFETIME, create_login_link, find_account
    from leadflow.kit.clock import SystemClock

    now = SystemClock().now()

    async def run(db: Database) -> dict[str, str]:
        async with db.session() as session:
            account = await find_account(session, args.account)
            token = await create_login_link(session, account.id, now)
        return {"account_id": account.id, "account_name": account.name, "token": token}

    result = asyncio.run(_with_database(settings, run))
    url = f"{_base_url(settings).rstrip('/')}/dashboard/#/login?token={result['token']}"
    expires = (now + LOGIN_LINK_LIFETIME).isoformat(timespec="seconds")
    if args.json:
        print(json.dumps({**result, "url": url, "expires_at": expires}))
    else:
        print(url)
        print(
            f"Signs in to {result['account_name']!r} once, until {expires}.",
            file=sys.stderr,
        )
    return 0


# ``leadflow events send-test --type``: the event each kind of test lead comes from.
TEST_EVENT_TYPES = {
    "abandoned_checkout": "checkout.abandoned",
    "unfinished_order": "order.unfinished",
    "trial": "trial.started",
    "renewal": "renewal.due",
    "opt_in": "lead.opt_in",
    "purchase": "order.completed",
}


def sample_event(kind: str, email: str, reference: str, now: dt.datetime) -> dict[str, Any]:
    """A realistic event of ``kind`` (a key of ``TEST_EVENT_TYPES``) in leadflow's format."""
    event: dict[str, Any] = {
        "type": TEST_EVENT_TYPES[kind],
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "reference": reference,
        "customer": {
            "email": email,
            "first_name": "Jane",
            "last_name": "Doe",
            "language": "en",
            "country": "US",
        },
        "attributes": {"test": True},
    }
    if kind == "opt_in":
        return event
    event["products"] = [
        {"id": "sku-tee", "name": "Organic cotton T-shirt", "quantity": 2, "unit_price": "24.50"}
    ]
    event["amount"] = "49.00"
    event["currency"] = "USD"
    if kind in ("abandoned_checkout", "unfinished_order"):
        event["recovery_url"] = f"https://shop.example.com/checkout/recover/{reference}"
    return event


def _send_test_event(settings: Settings, args: argparse.Namespace) -> int:
    """Signs a test event with the account's webhook secret and posts it to the running
    leadflow, as a shop's platform would."""
    import secrets

    import httpx

    from leadflow.accounts.sessions import find_account
    from leadflow.kit.clock import SystemClock
    from leadflow.kit.signing import sign

    async def run(db: Database) -> tuple[str, str]:
        async with db.reader() as session:
            account = await find_account(session, args.account)
            return account.id, account.webhook_secret

    account_id, secret = asyncio.run(_with_database(settings, run))
    now = SystemClock().now()
    reference = args.reference or f"test-{secrets.token_hex(4)}"
    body = json.dumps(sample_event(args.type, args.email, reference, now)).encode()
    msg_id = f"msg_test_{secrets.token_hex(8)}"
    timestamp = int(now.timestamp())
    base = (args.base_url or _base_url(settings)).rstrip("/")
    url = f"{base}/v1/webhooks/{account_id}/events"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=args.timeout)
    except httpx.TransportError as exc:
        print(
            f"leadflow events: cannot reach {base} ({exc}); is leadflow running there "
            "(`leadflow serve`, or set LEADFLOW_BASE_URL)?",
            file=sys.stderr,
        )
        return 1
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text[:500]}
    if args.json:
        print(json.dumps({"status": response.status_code, "body": answer}))
    elif response.is_success:
        print(f"event {answer['event_id']} ({answer['type']}) accepted")
        if answer.get("lead_id"):
            print(f"lead {answer['lead_id']}: {answer['lead_status']}")
        for lead_id in answer.get("converted_lead_ids") or []:
            print(f"converted lead {lead_id}")
    else:
        detail = answer.get("detail") or answer.get("title") or response.reason_phrase
        print(f"leadflow events: {response.status_code} {detail}", file=sys.stderr)
    return 0 if response.is_success else 1


def _list_accounts(settings: Settings, args: argparse.Namespace) -> int:
    from leadflow.accounts.service import account_summaries

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.reader() as session:
            summaries = await account_summaries(session)
        return [
            {
                "id": s.id,
                "name": s.name,
                "created_at": s.created_at.isoformat(),
                "lead_management_enabled": s.lead_management_enabled,
                "api_keys": s.api_keys,
                "campaigns": s.campaigns,
            }
            for s in summaries
        ]

    result = asyncio.run(_with_database(settings, run))
    if args.json:
        print(json.dumps(result))
        return 0
    for account in result:
        enabled = "on" if account["lead_management_enabled"] else "off"
        print(
            f"{account['id']}  {account['name']!r}  created {account['created_at']}"
            f"  api keys {account['api_keys']}  campaigns {account['campaigns']}"
            f"  lead management {enabled}"
        )
    return 0


BACKFILL_POLL_SECONDS = 0.5


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Queue a backfill as ``POST /v1/campaigns/{id}/backfill`` does (or take the one already
    queued or running), then (unless ``--no-wait``) work on it in this process alongside any
    running workers, whichever claims it, and follow its counts until it is over."""
    from leadflow.accounts.service import get_account
    from leadflow.campaigns.schemas import BackfillJobOut
    from leadflow.kit.clock import SystemClock
    from leadflow.lifecycle import backfill
    from leadflow.models.backfills import Backfill

    clock = SystemClock()

    async def run(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            account = await get_account(session, args.account_id)
            try:
                job = await backfill.start_backfill(
                    session, account, args.campaign_id, args.captured_from, clock.now()
                )
            except backfill.BackfillInProgress:
                # Run again after an interruption (or after --no-wait): follow that one.
                existing = await backfill.unfinished_backfill(session, account.id, args.campaign_id)
                if args.no_wait or existing is None:
                    raise
                job = existing
                print(f"backfill {job.id} was {job.status}: following it", file=sys.stderr)
            total = await backfill.leads_to_scan(session, job)
        if args.no_wait:
            return BackfillJobOut.model_validate(job).model_dump(mode="json")
        over = False
        runner = asyncio.create_task(
            backfill.run_backfills(db, clock, stopping=lambda: over), name="backfills"
        )
        try:
            with Progress(f"backfill {job.id}: examined", total, unit="leads") as progress:
                while True:
                    async with db.reader() as session:
                        current = await session.get_one(Backfill, job.id)
                    progress.update(current.scanned)
                    if current.status not in backfill.UNFINISHED:
                        break
                    if runner.done() and (failure := runner.exception()) is not None:
                        raise failure
                    # Done or not, this process's runner may have left it to a worker.
                    await asyncio.sleep(BACKFILL_POLL_SECONDS)
        finally:
            over = True
            await runner
        return BackfillJobOut.model_validate(current).model_dump(mode="json")

    result = asyncio.run(_with_database(settings, run))
    if args.json:
        print(json.dumps(result))
    elif args.no_wait:
        print(f"backfill {result['id']} queued: a worker runs it")
    else:
        reason = f" ({result['reason']})" if result["reason"] else ""
        print(
            f"backfill {result['id']} {result['status']}{reason}: {result['scanned']} leads "
            f"examined, {result['enrolled']} enrolled"
        )
    return 0 if result["status"] in ("queued", "completed") else 1


def _generate_secret_key() -> int:
    from leadflow.kit.secrets import generate_key

    print(generate_key())
    return 0


def _instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +01:00)")
    return value.astimezone(dt.UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "API and worker in one process (migrates an embedded SQLite database)"),
        ("api", "the HTTP API only"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--host", help="bind address (default 127.0.0.1, or LEADFLOW_HOST)")
        cmd.add_argument("--port", type=int, help="port (default 8000, or LEADFLOW_PORT)")
    sub.add_parser("worker", help="background jobs only")
    bounces = sub.add_parser("bounces", help="SMTP listener for returned DSN and ARF reports")
    bounces.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    bounces.add_argument("--port", type=int, default=2525, help="port (default 2525)")
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", "-o", default=str(OPENAPI_PATH))
    accounts = sub.add_parser("accounts", help="manage accounts")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = accounts_sub.add_parser("create", help="create an account and print its credentials")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    accounts_list = accounts_sub.add_parser(
        "list", help="every account with its counts of API keys and campaigns (no secrets)"
    )
    accounts_list.add_argument("--json", action="store_true", help="print the result as JSON")
    login_link = accounts_sub.add_parser(
        "login-link", help="print a link that signs in to the account's dashboard (once, 15 min)"
    )
    login_link.add_argument("account", metavar="ACCOUNT", help="the account's id or exact name")
    login_link.add_argument("--json", action="store_true", help="print the result as JSON")

    events = sub.add_parser("events", help="webhook events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    send_test = events_sub.add_parser(
        "send-test",
        help="sign a test event with the account's webhook secret and post it to leadflow",
    )
    send_test.add_argument("account", metavar="ACCOUNT", help="the account's id or exact name")
    send_test.add_argument(
        "--type",
        choices=list(TEST_EVENT_TYPES),
        default="abandoned_checkout",
        help="the kind of event (default abandoned_checkout; purchase converts the email's "
        "open leads)",
    )
    send_test.add_argument(
        "--email",
        default="jane.doe@example.com",
        help="the customer's email address (default jane.doe@example.com)",
    )
    send_test.add_argument(
        "--reference", help="the checkout, order or subscription id (default: a new one)"
    )
    send_test.add_argument(
        "--base-url",
        metavar="URL",
        help="where leadflow listens (default LEADFLOW_BASE_URL, else LEADFLOW_HOST and "
        "LEADFLOW_PORT)",
    )
    send_test.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="default 10"
    )
    send_test.add_argument("--json", action="store_true", help="print the answer as JSON")

    doctor = sub.add_parser(
        "doctor",
        help="check the database, migrations, SMTP, the secret key and unsafe settings",
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for the database and the SMTP server (default 5)",
    )
    doctor.add_argument("--json", action="store_true", help="print the result as JSON")

    backfill = sub.add_parser(
        "backfill",
        help="enroll a campaign's earlier open leads (as POST /v1/campaigns/{id}/backfill)",
    )
    backfill.add_argument("account_id")
    backfill.add_argument("campaign_id")
    backfill.add_argument(
        "--captured-from",
        type=_instant,
        metavar="TIME",
        help="only leads captured at or after this instant (ISO 8601 with a time zone)",
    )
    backfill.add_argument(
        "--no-wait",
        action="store_true",
        help="queue it and return; the workers run it",
    )
    backfill.add_argument("--json", action="store_true", help="print the result as JSON")

    keys = sub.add_parser("keys", help="manage an account's API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_list = keys_sub.add_parser("list", help="the active keys, with their last use")
    keys_list.add_argument("account_id")
    keys_list.add_argument("--json", action="store_true", help="print the result as JSON")
    keys_create = keys_sub.add_parser("create", help="create a key and print it (only now)")
    keys_create.add_argument("account_id")
    keys_create.add_argument("name")
    keys_create.add_argument("--json", action="store_true", help="print the result as JSON")
    keys_revoke = keys_sub.add_parser("revoke", help="revoke a key (not the account's last)")
    keys_revoke.add_argument("account_id")
    keys_revoke.add_argument("key_id")

    webhook_secret = sub.add_parser("webhook-secret", help="manage an account's webhook secret")
    webhook_secret_sub = webhook_secret.add_subparsers(dest="webhook_secret_command", required=True)
    rotate = webhook_secret_sub.add_parser(
        "rotate", help="replace the secret; the old one is accepted during the overlap"
    )
    rotate.add_argument("account_id")
    rotate.add_argument(
        "--overlap-hours",
        type=int,
        choices=range(0, 24 * 366),
        metavar="HOURS",
        help="how long the old secret is still accepted (default "
        "LEADFLOW_WEBHOOK_SECRET_ROTATION_HOURS; 0 = at once, for a leaked secret)",
    )
    rotate.add_argument("--json", action="store_true", help="print the result as JSON")

    secret_key = sub.add_parser("secret-key", help="the envelope key of the secrets at rest")
    secret_key_sub = secret_key.add_subparsers(dest="secret_key_command", required=True)
    secret_key_sub.add_parser("generate", help="print a new key for LEADFLOW_SECRET_KEY")
    reencrypt = secret_key_sub.add_parser(
        "rotate", help="re-encrypt every stored secret under the first key, in batches"
    )
    reencrypt.add_argument(
        "--batch-size",
        type=int,
        default=500,
        choices=range(1, 100_001),
        metavar="N",
        help="rows per transaction (default 500)",
    )
    reencrypt.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        # Before the settings load: the settings refusing to load is one of its findings.
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return _doctor(args)
    settings = Settings()
    configure_logging(settings)  # text or JSON lines, secrets scrubbed (LEADFLOW_LOG_FORMAT)
    if args.command == "serve":
        return _serve(settings, args, run_worker=True)
    if args.command == "api":
        return _serve(settings, args, run_worker=False)
    if args.command == "worker":
        from leadflow.worker import run_worker

        asyncio.run(run_worker(settings))
        return 0
    if args.command == "bounces":
        from leadflow.integrations.returns_listener import run_returns_listener

        asyncio.run(run_returns_listener(settings, args.host, args.port))
        return 0
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "openapi":
        return _openapi(args)
    if args.command == "secret-key" and args.secret_key_command == "generate":  # noqa: S105
        return _generate_secret_key()
    try:
        if args.command == "keys":
            return _keys(settings, args)
        if args.command == "webhook-secret":
            return _rotate_webhook_secret(settings, args)
        if args.command == "secret-key":
            return _rotate_secret_key(settings, args)
        if args.command == "backfill":
            return _backfill(settings, args)
        if args.command == "events":
            return _send_test_event(settings, args)
        if args.accounts_command == "list":
            return _list_accounts(settings, args)
        if args.accounts_command == "login-link":
            return _login_link(settings, args)
        return _create_account(settings, args)
    except (AppError, SecretKeyError) as exc:
        detail = exc.detail if isinstance(exc, AppError) else str(exc)
        print(f"leadflow {args.command}: {detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
