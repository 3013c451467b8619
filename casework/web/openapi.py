"""Write the HTTP API's OpenAPI document (from the same pydantic models the engine uses) to
docs/openapi.json: `python -m casework.web.openapi [PATH]`; `--check` fails when the file is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def document() -> str:
    from casework.web.app import build_app

    return json.dumps(build_app(None).openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else DEFAULT
    text = document()
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run python -m casework.web.openapi", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
