"""The ``leadflow`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from leadflow.config import Settings

OPENAPI_PATH = Path("openapi") / "openapi.json"


def _serve(settings: Settings, args: argparse.Namespace, *, run_worker: bool) -> int:
    import uvicorn

    from leadflow.app import create_app

    app = create_app(settings, run_worker=run_worker)
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        proxy_headers=True,
        log_level="info",
    )
    return 0


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


def _create_account(settings: Settings, args: argparse.Namespace) -> int:
    from leadflow.accounts.service import create_account
    from leadflow.kit.clock import SystemClock
    from leadflow.kit.db import Database
    from leadflow.kit.migrate import upgrade

    async def run() -> dict[str, str]:
        db = Database(settings.database_url)
        try:
            if settings.is_sqlite:
                await upgrade(db.engine)
            async with db.session() as session:
                created = await create_account(session, args.name, SystemClock().now())
            return {
                "id": created.account.id,
                "name": created.account.name,
                "api_key": created.api_key,
                "webhook_secret": created.account.webhook_secret,
            }
        finally:
            await db.dispose()

    result = asyncio.run(run())
    if args.json:
        print(json.dumps(result))
    else:
        print(f"account id:      {result['id']}")
        print(f"api key:         {result['api_key']}")
        print(f"webhook secret:  {result['webhook_secret']}")
        print("Store the key and the secret now: they are not shown again.", file=sys.stderr)
    return 0


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
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", "-o", default=str(OPENAPI_PATH))
    accounts = sub.add_parser("accounts", help="manage accounts")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = accounts_sub.add_parser("create", help="create an account and print its credentials")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per job run every few seconds would drown everything else.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    settings = Settings()
    if args.command == "serve":
        return _serve(settings, args, run_worker=True)
    if args.command == "api":
        return _serve(settings, args, run_worker=False)
    if args.command == "worker":
        from leadflow.worker import run_worker

        asyncio.run(run_worker(settings))
        return 0
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "openapi":
        return _openapi(args)
    return _create_account(settings, args)


if __name__ == "__main__":
    sys.exit(main())
