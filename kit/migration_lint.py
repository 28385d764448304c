"""Flag destructive migrations: a drop or rename that the previous release may still read.

Pods of release N keep serving while release N+1's migration runs, and a rollback brings N
back onto N+1's schema (app.migrate accepts a database ahead of the code). So a revision's
`upgrade()` may only *expand* the schema. Dropping or renaming a table or column is the
*contract* step of an expand/contract pair, allowed only when the revision says so:

    contract_of = "<revision of the expand step>"   # module level, next to down_revision

and then only when that expand revision is an ancestor, and the current models (the code that
ships with the contract step) no longer use the dropped or renamed-away name. Ship the contract
step at least one release after its expand step.

Reads the revision files' syntax only (nothing is imported or run):
`python -m kit.migration_lint [--versions DIR]`; exit 1 with one line per finding.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData

from kit.paths import ROOT

VERSIONS = ROOT / "service" / "src" / "app" / "migrations" / "versions"
MARKER = "contract_of"

# Raw SQL in op.execute(...): the same operations written by hand.
_RAW_SQL = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN)|ALTER\s+TABLE\s+\S+\s+DROP\s+\S+|RENAME\s+(TO|COLUMN))\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Destructive:
    """One drop/rename in upgrade(): what goes away (table, or table.column) and where."""

    line: int
    operation: str
    table: str | None
    column: str | None


@dataclass(frozen=True)
class Revision:
    path: Path
    revision: str
    down_revisions: tuple[str, ...]
    contract_of: str | None
    destructive: tuple[Destructive, ...]


def _constant(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _module_value(tree: ast.Module, name: str) -> ast.expr | None:
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return value
    return None


def _strings(node: ast.expr | None) -> tuple[str, ...]:
    if node is None:
        return ()
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(s for element in node.elts if (s := _constant(element)) is not None)
    value = _constant(node)
    return (value,) if value is not None else ()


def _argument(call: ast.Call, position: int, keyword: str) -> str | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return _constant(kw.value)
    return _constant(call.args[position]) if len(call.args) > position else None


def _destructive_calls(function: ast.FunctionDef) -> Iterator[Destructive]:
    # `with op.batch_alter_table("users") as batch_op:` binds batch_op to that table.
    batch_tables: dict[str, str | None] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                ):
                    batch_tables[item.optional_vars.id] = _argument(call, 0, "table_name")
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        name = node.func.attr
        in_batch = receiver in batch_tables
        table = batch_tables.get(receiver) if in_batch else None
        shift = 0 if in_batch else 1  # batch_op.drop_column(col) vs op.drop_column(table, col)
        if name == "drop_table":
            yield Destructive(node.lineno, "drop_table", _argument(node, 0, "table_name"), None)
        elif name == "rename_table":
            yield Destructive(node.lineno, "rename_table", _argument(node, 0, "old_table_name"), None)
        elif name == "drop_column":
            table = table if in_batch else _argument(node, 0, "table_name")
            yield Destructive(node.lineno, "drop_column", table, _argument(node, shift, "column_name"))
        elif name == "alter_column" and any(kw.arg == "new_column_name" for kw in node.keywords):
            table = table if in_batch else _argument(node, 0, "table_name")
            yield Destructive(node.lineno, "rename_column", table, _argument(node, shift, "column_name"))
        elif name == "execute":
            sql = " ".join(
                c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
            if _RAW_SQL.search(sql):
                yield Destructive(node.lineno, "raw SQL drop/rename", None, None)


def parse_revision(path: Path) -> Revision:
    tree = ast.parse(path.read_text(), filename=str(path))
    revision = _constant(_module_value(tree, "revision"))
    if revision is None:
        raise ValueError(f'{path.name}: no `revision = "..."` at module level')
    upgrade = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"),
        None,
    )
    return Revision(
        path=path,
        revision=revision,
        down_revisions=_strings(_module_value(tree, "down_revision")),
        contract_of=_constant(_module_value(tree, MARKER)),
        destructive=tuple(_destructive_calls(upgrade)) if upgrade else (),
    )


def _ancestors(revision: str, by_id: dict[str, Revision]) -> set[str]:
    seen: set[str] = set()
    pending = list(by_id[revision].down_revisions)
    while pending:
        current = pending.pop()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        pending.extend(by_id[current].down_revisions)
    return seen


def _still_modelled(item: Destructive, metadata: MetaData) -> bool:
    """The code shipping with this revision still maps the name that goes away."""
    if item.table is None or item.table not in metadata.tables:
        return False
    return item.column is None or item.column in metadata.tables[item.table].columns


def lint(revisions: Iterable[Revision], metadata: MetaData) -> list[Finding]:
    by_id = {rev.revision: rev for rev in revisions}
    findings: list[Finding] = []
    for rev in by_id.values():
        if rev.contract_of is not None:
            if rev.contract_of not in by_id:
                findings.append(Finding(rev.path, 1, f"{MARKER}={rev.contract_of!r}: no such revision"))
                continue
            if rev.contract_of not in _ancestors(rev.revision, by_id):
                findings.append(
                    Finding(
                        rev.path, 1, f"{MARKER}={rev.contract_of!r} is not an earlier revision (expand first)"
                    )
                )
                continue
        for item in rev.destructive:
            what = ".".join(p for p in (item.table, item.column) if p) or "(see the SQL)"
            if rev.contract_of is None:
                findings.append(
                    Finding(
                        rev.path,
                        item.line,
                        f"{item.operation} {what} in upgrade(): the previous release may still read "
                        f"it; split into expand/contract and mark the contract step with "
                        f"{MARKER} = '<expand revision>'",
                    )
                )
            elif _still_modelled(item, metadata):
                findings.append(
                    Finding(
                        rev.path,
                        item.line,
                        f"{item.operation} {what}: the models of this release still use it",
                    )
                )
    return sorted(findings, key=lambda f: (f.path.name, f.line))


def service_metadata() -> MetaData:
    import app.idempotency.tables
    import app.identity.infrastructure.tables
    import app.outbox.tables
    import app.projects.infrastructure.tables  # noqa: F401 - registers the tables on the metadata
    from app.persistence.database import metadata

    return metadata


def lint_directory(versions: Path, metadata: MetaData | None = None) -> list[Finding]:
    files = sorted(p for p in versions.glob("*.py") if p.name != "__init__.py")
    return lint((parse_revision(p) for p in files), metadata if metadata is not None else service_metadata())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.migration_lint", description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=Path, default=VERSIONS, help="directory of Alembic revision files")
    args = parser.parse_args(argv)
    if not args.versions.is_dir():
        print(f"migration_lint: {args.versions} is not a directory", file=sys.stderr)
        return 2
    try:
        findings = lint_directory(args.versions)
    except (SyntaxError, ValueError) as exc:
        print(f"migration_lint: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if findings:
        return 1
    print(f"migration_lint: {args.versions}: no destructive step outside a marked contract step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
