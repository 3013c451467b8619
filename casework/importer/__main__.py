"""`python -m casework.importer import LOG --mapping MAPPING` / `... export PATH`: the same commands
as `casework import` and `casework export` (casework/history_cli.py)."""

from __future__ import annotations

import sys

from casework.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] not in (["import"], ["export"]):
        print("usage: python -m casework.importer import LOG --mapping MAPPING | export PATH", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(args))
