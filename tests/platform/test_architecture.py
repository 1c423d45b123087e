"""The layout's rules, checked on the source (import-linter checks the layer order in CI)."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

from leadflow.models import Base

SRC = Path(__file__).resolve().parents[2] / "src" / "leadflow"
TESTS = Path(__file__).resolve().parents[1]
MODELS = {mapper.class_.__name__ for mapper in Base.registry.mappers}
SQL_CALLS = {"select", "insert", "update", "delete"}
# Objects built but never stored: a campaign preview renders for an unsaved sample lead.
TRANSIENT = {("campaigns", "Lead")}
SESSION_CALLS = {"execute", "scalar", "scalars", "get", "get_one", "add", "delete", "flush"}


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(SRC.rglob("*.py"))}


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imported_packages(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("leadflow.")}


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def test_no_two_packages_import_each_other() -> None:
    imports: dict[str, set[str]] = defaultdict(set)
    for path, tree in _modules().items():
        imports[_package(path)] |= _imported_packages(tree) - {_package(path)}
    mutual = [
        (a, b)
        for a, b in itertools.combinations(sorted(imports), 2)
        if b in imports[a] and a in imports[b]
    ]
    assert mutual == []


def test_each_table_has_one_writing_package() -> None:
    """Inserts, updates, deletes and new ORM objects of each model come from one package."""
    writers: dict[str, set[str]] = defaultdict(set)
    for path, tree in _modules().items():
        if _package(path) == "models":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            if isinstance(node.func, ast.Name) and name in MODELS:
                if (_package(path), name) not in TRANSIENT:
                    writers[name].add(_package(path))
            elif name in SQL_CALLS - {"select"} and node.args:
                target = node.args[0]
                if (  # table(Model): the same table, through Core
                    isinstance(target, ast.Call) and _called_name(target) == "table" and target.args
                ):
                    target = target.args[0]
                if isinstance(target, ast.Name) and target.id in MODELS:
                    writers[target.id].add(_package(path))
    shared = {model: sorted(packages) for model, packages in writers.items() if len(packages) > 1}
    assert shared == {}
    assert writers["Lead"] == {"lifecycle"}
    assert writers["Enrollment"] == writers["Message"] == writers["Conversion"] == {"lifecycle"}


def test_routers_run_no_sql() -> None:
    """Routers parse, call a service and answer; queries and state changes live below."""
    offenders = []
    for path in sorted((SRC / "api").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            on_session = (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"session", "db"}
            )
            if (name in SQL_CALLS and isinstance(node.func, ast.Name)) or (
                on_session and name in SESSION_CALLS
            ):
                offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []


def test_only_the_unit_of_work_commits() -> None:
    """Services flush; the request dependency and the job's unit of work commit (and the
    migration runner, which owns its connection, around SQLite's foreign-key switch)."""
    commits = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _called_name(node) == "commit"
    ]
    assert sorted(commit.split(":")[0] for commit in commits) == [
        "kit/db.py",
        "kit/migrate.py",
        "kit/migrate.py",
    ]


def test_conftests_import_no_other_conftest() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "conftest" in node.module:
                offenders.append(f"{path.relative_to(TESTS)} imports {node.module}")
    assert offenders == []
