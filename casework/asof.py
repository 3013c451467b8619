"""`python -m casework.asof REPORT --as-of INSTANT [options]`: the same as `casework report REPORT
--as-of INSTANT [options]` (and `casework at-risk --as-of ...` for REPORT at_risk), kept for the
scripts that call it; the command lives in casework/report_cli.py, the work in projections/asof.py."""

from __future__ import annotations

import sys


def command_line(argv: list[str]) -> list[str]:
    """The `casework` arguments this module's arguments stand for."""
    if argv and argv[0] in ("at_risk", "at-risk"):
        return ["at-risk", *argv[1:]]
    return ["report", *argv]


if __name__ == "__main__":
    from casework.cli import main

    sys.exit(main(command_line(sys.argv[1:])))
