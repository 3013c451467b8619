"""What every `casework` command shares: exit codes, turning errors into one clear line, and output
(tables that measure CJK text by its width on a terminal, CSV, JSON).

Exit codes (documented in README.md, "Exit codes"):

    0  done
    1  failed for another reason (a store that cannot be opened, a payload that cannot be decrypted)
    2  usage: a bad option, argument, input or setting; nothing was sent
    3  refused: the engine's rules refused the command; nothing was stored
    4  not found: no such case or plan, or nothing to read here (no reporting tables, no event store)
    5  engine unreachable: no Temporal server at the address, or no casework worker answered in time
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from enum import IntEnum
from typing import Any

import click
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    NOT_FOUND = 4
    UNREACHABLE = 5


class CliError(Exception):
    """An error the command reports in one line and exits with `code`."""

    code = ExitCode.FAILED
    label = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Usage(CliError):
    code, label = ExitCode.USAGE, "invalid input"


class Refused(CliError):
    code, label = ExitCode.REFUSED, "refused"


class NotFound(CliError):
    code, label = ExitCode.NOT_FOUND, "not found"


class Unreachable(CliError):
    code, label = ExitCode.UNREACHABLE, "engine unreachable"


def describe_validation(err: ValidationError, kind: str | None = None, option_names: bool = True,
                        options: dict[str, str] | None = None) -> str:
    """A pydantic error as a person reads it: which option, what is wrong; never the tagged-union dump.
    `options` names the option of a nested field where it is not --<field> (`customer.id`: --customer-id)."""
    problems = []
    for e in err.errors():
        loc = [str(part) for part in e["loc"]]
        if kind and loc and loc[0] == kind:  # the discriminator's tag, not something the user typed
            loc = loc[1:]
        where = ".".join(loc)
        if options and where in options:
            where = options[where]
        elif option_names and loc:
            where = "--" + loc[0].replace("_", "-") + ("" if len(loc) == 1 else " " + ".".join(loc[1:]))
        message = e["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


# Output. One console for stdout: on a terminal it wraps a wide table to the terminal's width; into a
# pipe or file it never wraps or truncates (a script reads whole cells) and writes no colour codes.
def _console() -> Console:
    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=None if terminal else 1_000_000,
                   emoji=False, markup=False)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    """Rows as a table: a header, then one line a row, columns two cells apart, CJK text two cells a
    character (rich measures by display width, not by code points)."""
    cols = columns or (list(rows[0]) if rows else [])
    terminal = sys.stdout.isatty()
    # A rule under the header on a terminal; plain lines for scripts (no box-drawing characters).
    t = Table(box=box.SIMPLE_HEAD if terminal else None, show_edge=False, pad_edge=False,
              header_style="bold", expand=False)
    for c in cols:
        t.add_column(c, no_wrap=not terminal, overflow="fold")
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in cols))
    return t


def print_table(rows: list[dict[str, Any]], columns: list[str] | None = None, empty: str = "(no rows)") -> None:
    if not rows:
        print(empty)
        return
    console = _console()
    console.print(table(rows, columns))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def emit(rows: list[dict[str, Any]], fmt: str, empty: str = "(no rows)") -> None:
    """Rows in the chosen format: table, csv or json."""
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        if not rows:
            return
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    else:
        print_table(rows, empty=empty)


class Instant(click.ParamType):
    """An ISO 8601 instant with its time zone (`2026-03-01T00:00:00+08:00`, `...Z`). One without a
    zone is refused (exit 2), not guessed: the engine keeps instants in UTC and the desk's calendar
    may be eight hours away, so a bare `2026-03-01` would pick a day the asker did not mean."""

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 instant (as in 2026-03-01T00:00:00+08:00)", param, ctx)
        if at.tzinfo is None:
            self.fail(f"{value!r} has no time zone; give one, as in {at.isoformat()}+08:00 or {at.isoformat()}Z",
                      param, ctx)
        return at


INSTANT = Instant()
