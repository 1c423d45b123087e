"""Ready to be distributed by tenant: README's "Running in production" section says how every
table would be laid out on Citus (distributed by ``account_id``, or a reference table copied
to every node), and these tests hold it to the schema.

Citus enforces a primary key or a unique constraint of a distributed table only when it
includes the distribution column, so every such key of a tenant table (one with an
``account_id`` column) that lacks ``account_id`` must be named in README with the composite
key it would become. A foreign key from a reference table to a distributed one is refused,
so the reference tables may refer only to each other. And the queries of one tenant find their
rows through indexes that lead with ``account_id``: an index that does not is either a
worker's scan across accounts or reached through a parent row of one account, and says which
below.

The keys and indexes are read from the models and, on PostgreSQL, from the catalog of a
migrated database, which must agree.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Column, Table, UniqueConstraint, event, text
from sqlalchemy.dialects import postgresql

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import upgrade
from leadflow.models import Base
from tests.support.api import auth, ok_json
from tests.support.campaigns import create_campaign
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url
from tests.support.events import capture

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Running in production"
TENANT = "account_id"

# Indexes of tenant tables that do not lead with account_id, and why that is right.
# A worker's claim or sweep runs across every account (on Citus: on every shard at once).
ACROSS_ACCOUNTS = {
    "ix_enrollments_due": "due follow-ups across accounts (dispatch lag, expiry)",
    "ix_enrollments_claim": "the dispatch claim, per campaign of each switched-on account",
    "ix_iln_deliveries_due": "the notification outbox claim",
    "ix_shopify_checkouts_due": "the Shopify watcher's sweep of checkouts to abandon",
    "ix_backfills_status_created": "the backfill queue's claim",
    "ix_messages_sending": "the sends a dead worker left in flight (a handful)",
}
# Reached through a parent row (campaign, lead, endpoint) already read for its account:
# the parent's id names one account, so the rows are one tenant's.
THROUGH_A_PARENT = {
    "ix_enrollments_campaign_id": "a campaign's enrollments",
    "ix_variants_campaign_id": "a campaign's variants",
    "ix_conversions_campaign": "a campaign's conversions by variant and step (stats)",
    "ix_messages_campaign": "a campaign's follow-ups by variant and step (stats)",
    "ix_messages_lead_id": "a lead's follow-ups",
    "ix_visits_campaign_id": "a campaign's visits",
    "ix_iln_endpoints_campaign_id": "a campaign's notification endpoints",
    "ix_iln_deliveries_endpoint_id": "an endpoint's deliveries",
    "ix_backfills_campaign_created": "a campaign's backfills",
}
NOT_LEADING = ACROSS_ACCOUNTS | THROUGH_A_PARENT
# Statements of a tenant's requests that reach a tenant table without filtering it by
# account_id (on Citus: sent to every shard), by how they start. To fix, not to add to.
UNFILTERED = {
    "UPDATE events SET result=": "ingest stores each event's answer by id alone",
}


@dataclass(frozen=True)
class Key:
    """A primary key, unique constraint or unique index: its columns, expressions rendered
    without their table (``lower(name)``)."""

    table: str
    name: str
    columns: tuple[str, ...]

    @property
    def has_tenant(self) -> bool:
        return TENANT in self.columns

    @property
    def distributed(self) -> tuple[str, ...]:
        """The key it would become on a table distributed by account_id."""
        return self.columns if self.has_tenant else (TENANT, *self.columns)

    def __str__(self) -> str:
        return f"{self.table}.{self.name} ({', '.join(self.columns)})"


def render(table: Table, part: object) -> str:
    if isinstance(part, Column):
        return part.name
    sql = str(part.compile(dialect=postgresql.dialect()))  # type: ignore[attr-defined]
    return sql.replace(f"{table.name}.", "")


def keys_of(table: Table) -> list[Key]:
    keys = [Key(table.name, "primary key", tuple(c.name for c in table.primary_key.columns))]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names = tuple(c.name for c in constraint.columns)
            keys.append(Key(table.name, str(constraint.name), names))
    for index in table.indexes:
        if index.unique:
            parts = tuple(render(table, part) for part in index.expressions)
            keys.append(Key(table.name, str(index.name), parts))
    return keys


def tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def tenant_tables() -> list[Table]:
    return [t for t in tables() if TENANT in t.columns]


def keys_without_tenant() -> list[Key]:
    return [key for t in tenant_tables() for key in keys_of(t) if not key.has_tenant]


# --- README ------------------------------------------------------------------------------


def section() -> str:
    readme = README.read_text(encoding="utf-8")
    assert SECTION in readme, f"README.md has no {SECTION!r} section"
    return readme.split(SECTION, 1)[1].split("\n## ", 1)[0]


@dataclass(frozen=True)
class Placement:
    table: str
    reference: bool
    distribution_column: str | None
    keys: frozenset[tuple[str, ...]]


def tuple_of(text_: str) -> tuple[str, ...]:
    inner = text_.strip()
    assert inner.startswith("(") and inner.endswith(")"), f"not a key: {text_!r}"
    return tuple(part.strip() for part in inner[1:-1].split(","))


def placements() -> dict[str, Placement]:
    """The rows of README's table of tables: `| `table` | how | `(key)`, `(key)` |`."""
    known = {t.name for t in tables()}
    found: dict[str, Placement] = {}
    for line in section().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        name = cells[0].strip("`")
        if name not in known:
            continue
        assert name not in found, f"README places {name} twice"
        column = re.search(r"`(\w+)`", cells[1])
        found[name] = Placement(
            table=name,
            reference="reference" in cells[1].lower(),
            distribution_column=column.group(1) if column else None,
            keys=frozenset(tuple_of(k) for k in re.findall(r"`(\([^`]*\))`", cells[2])),
        )
    return found


def test_readme_places_every_table():
    placed = placements()
    missing = sorted({t.name for t in tables()} - set(placed))
    assert missing == [], f"README {SECTION!r} says nothing of how to distribute {missing}"
    for name, placement in placed.items():
        table = Base.metadata.tables[name]
        if placement.reference:
            continue
        assert placement.distribution_column == TENANT, f"{name}: distributed by what?"
        assert TENANT in table.columns, f"{name} has no {TENANT} column to distribute by"


def test_every_key_without_account_id_is_accounted_for_in_readme():
    """The list Citus needs: every primary key and unique constraint of a tenant table that
    lacks account_id, and what README makes of it."""
    placed = placements()
    unaccounted = []
    for key in keys_without_tenant():
        placement = placed.get(key.table)
        if placement is None:
            unaccounted.append(f"{key}: the table is not in README")
        elif not placement.reference and key.distributed not in placement.keys:
            wanted = ", ".join(key.distributed)
            unaccounted.append(f"{key}: README should name it as `({wanted})`")
    assert unaccounted == [], "\n".join(unaccounted)
    # The list itself is not empty: ids are the primary keys of most tables.
    assert len(keys_without_tenant()) > 10


def test_readme_keys_are_the_tables_keys():
    """No key in README that the schema does not have (a renamed or dropped column)."""
    for name, placement in placements().items():
        keys = keys_of(Base.metadata.tables[name])
        if placement.reference:
            expected = {key.columns for key in keys}
        else:
            expected = {key.distributed for key in keys}
        assert placement.keys == expected, f"README's keys for {name}"


def test_reference_tables_refer_only_to_reference_tables():
    """Citus refuses a foreign key from a reference table to a distributed table."""
    placed = placements()
    for name, placement in placed.items():
        if not placement.reference:
            continue
        for fk in Base.metadata.tables[name].foreign_keys:
            target = fk.column.table.name
            assert placed[target].reference, f"reference table {name} refers to {target}"


def test_indexes_lead_with_account_id_or_say_why_not():
    """Hot queries of one tenant filter by account_id first."""
    not_leading = {
        str(index.name): table.name
        for table in tenant_tables()
        for index in table.indexes
        if not index.unique and render(table, index.expressions[0]) != TENANT
    }
    unexplained = sorted(f"{t}.{i}" for i, t in not_leading.items() if i not in NOT_LEADING)
    assert unexplained == [], "indexes not led by account_id, with no reason given"
    stale = sorted(set(NOT_LEADING) - set(not_leading))
    assert stale == [], "reasons given for indexes that lead with account_id or do not exist"


# --- the catalog of a migrated PostgreSQL database ---------------------------------------

CATALOG = text(
    """
    SELECT t.relname AS table_name,
           i.relname AS index_name,
           x.indisprimary AS is_primary,
           x.indisunique AS is_unique,
           array(
               SELECT coalesce(a.attname, '(expression)')
               FROM unnest(x.indkey[0:x.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
               ORDER BY k.n
           ) AS columns
    FROM pg_index x
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace s ON s.oid = t.relnamespace
    WHERE s.nspname = current_schema() AND t.relname <> 'alembic_version'
    """
)


@dataclass(frozen=True)
class Fact:
    """What the tests above judge of an index, the same read from the models or the catalog."""

    table: str
    unique: bool
    columns: tuple[str | None, ...]  # None: an expression


def model_facts() -> set[Fact]:
    facts = set()
    for table in tables():
        for key in keys_of(table):
            columns = tuple(c if c in table.columns else None for c in key.columns)
            facts.add(Fact(table.name, True, columns))
        for index in table.indexes:
            if not index.unique:
                parts = tuple(
                    part.name if isinstance(part, Column) else None for part in index.expressions
                )
                facts.add(Fact(table.name, False, parts))
    return facts


@pytest.fixture
async def migrated_pg() -> AsyncIterator[Database]:
    await pg_or_skip()
    name = await create_pg_database()
    db = Database(pg_url(name))
    try:
        await upgrade(db.engine)
        yield db
    finally:
        await db.dispose()
        await drop_pg_database(name)


def catalog_facts(rows: Iterable[tuple[str, str, bool, bool, list[str]]]) -> set[Fact]:
    return {
        Fact(table, unique or primary, tuple(None if c == "(expression)" else c for c in columns))
        for table, _index, primary, unique, columns in rows
    }


async def test_the_migrated_catalog_has_the_keys_and_indexes_of_the_models(migrated_pg):
    """Every key and index judged above, and no other, exists in a migrated PostgreSQL
    database: none was added by a migration alone."""
    async with migrated_pg.engine.connect() as conn:
        rows = [tuple(row) for row in (await conn.execute(CATALOG)).all()]
    in_catalog = catalog_facts(rows)  # type: ignore[arg-type]
    in_models = model_facts()
    assert len(in_models) > 40, "the models' keys and indexes were not read"
    assert in_catalog - in_models == set(), "in the database, not in the models"
    assert in_models - in_catalog == set(), "in the models, not in the database"
    # And the catalog's own keys without account_id are the ones README accounts for.
    tenant = {t.name for t in tenant_tables()}
    from_catalog = {
        (f.table, tuple(c or "" for c in f.columns))
        for f in in_catalog
        if f.unique and f.table in tenant and TENANT not in f.columns
    }
    from_models = {
        (k.table, tuple(c if c in Base.metadata.tables[k.table].columns else "" for c in k.columns))
        for k in keys_without_tenant()
    }
    assert from_catalog == from_models


# --- the statements of one tenant's requests -----------------------------------------------


def tables_in(statement: str) -> set[str]:
    tenant = {t.name for t in tenant_tables()}
    return set(re.findall(r"\b(?:FROM|JOIN|UPDATE)\s+(\w+)", statement)) & tenant


def unfiltered(statement: str) -> list[str]:
    """The tenant tables ``statement`` reads or changes with no ``<table>.account_id`` in it."""
    return sorted(
        t for t in tables_in(statement) if not re.search(rf"\b{t}\.account_id\b", statement)
    )


async def test_a_tenants_requests_filter_every_tenant_table_by_account_id(
    client: httpx.AsyncClient, account: dict[str, str], clock: ManualClock, db: Database
) -> None:
    """Webhook intake (a lead, its enrollment), the lead list and a lead, the campaigns and
    the stats: every statement names account_id for each tenant table it reads or changes
    (inserts carry it as a value), so on Citus each goes to the one shard of its tenant."""
    campaign = await create_campaign(client, account, status="active")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        lead = await capture(client, account, clock, reference="cart-1")
        for path in (
            "/v1/leads",
            f"/v1/leads/{lead}",
            "/v1/campaigns",
            f"/v1/campaigns/{campaign['id']}",
            "/v1/stats",
            f"/v1/campaigns/{campaign['id']}/stats",
        ):
            ok_json(await client.get(path, headers=auth(account)))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    reaching = [s for s in statements if tables_in(s) and not s.startswith("INSERT")]
    assert len(reaching) >= 8, "the requests were not recorded"
    found = {}
    for statement in reaching:
        known = [prefix for prefix in UNFILTERED if statement.startswith(prefix)]
        if unfiltered(statement) and not known:
            found[statement[:160]] = unfiltered(statement)
        for prefix in known:
            assert unfiltered(statement), f"{prefix!r} filters by account_id now: drop it"
    assert found == {}, "statements of one tenant that do not filter by account_id"
    seen = {prefix for prefix in UNFILTERED for s in reaching if s.startswith(prefix)}
    assert seen == set(UNFILTERED), "listed statements that no longer run"
