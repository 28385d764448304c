"""Human tables (Rich) by default, JSON for machines (`--json`), progress on waits.

Rich is imported only when a human table or spinner is drawn: the service image ships the
CLI for `kit smoke --json` without Rich (see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from kit.cli.errors import KitError


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    grid = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    _console().print(grid)


def line(text: str) -> None:
    """A plain line on stdout (no markup interpretation)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A line for humans on stderr (keeps stdout clean for --json)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Progress(Protocol):
    def update(self, text: str) -> None: ...


class _Spinner:
    def __init__(self, status: Any) -> None:
        self._status = status

    def update(self, text: str) -> None:
        self._status.update(text)


class _Silent:
    def update(self, text: str) -> None:
        pass


class _Lines:
    """Without a terminal (CI logs, --json): one line per change, on stderr."""

    def __init__(self) -> None:
        self._last = ""

    def update(self, text: str) -> None:
        if text != self._last:
            note(text)
            self._last = text


@contextlib.contextmanager
def progress(text: str, *, lines: bool = True) -> Iterator[Progress]:
    """A spinner on a terminal, else change-only lines on stderr (none with lines=False)."""
    if sys.stderr.isatty():
        with _console(stderr=True).status(text) as status:
            yield _Spinner(status)
    elif not lines:
        yield _Silent()
    else:
        printer = _Lines()
        printer.update(text)
        yield printer


def confirm(question: str, assume_yes: bool) -> None:
    """Ask on the terminal; without one, refuse unless --yes was given."""
    from kit.cli.errors import ABORTED

    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise KitError(f"{question} needs confirmation: re-run with --yes (no terminal to ask on)", ABORTED)
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in {"y", "yes"}:
        raise KitError("aborted: nothing was changed", ABORTED)
