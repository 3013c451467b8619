"""Write the HTTP API's OpenAPI document (from the same pydantic models the engine uses) to
docs/openapi.json: `python -m casework.web.openapi [PATH]`; `--check` fails when the file is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def document() -> str:
    from casework.web.app import build_app

    return json.dumps(build_app(None).openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# click parses the arguments so that `--help` is help, and an unknown option an error, never a file name.
@click.command(name="python -m casework.web.openapi", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when PATH differs from the current document.")
def cli(path: Path | None, check: bool) -> None:
    """Write the HTTP API's OpenAPI document to PATH (default: docs/openapi.json)."""
    path = path or DEFAULT
    text = document()
    if check:
        if not path.exists() or path.read_text() != text:
            click.echo(f"{path} is out of date: run python -m casework.web.openapi", err=True)
            sys.exit(1)
        return
    path.write_text(text)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    cli()  # click: --help prints help, a usage error exits 2
