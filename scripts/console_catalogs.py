"""Write the console's gettext catalogs (casework/web/console/locale/*/LC_MESSAGES/messages.po).

Messages are extracted from the templates and modules with Babel; translations are kept in
scripts/console_translations.toml (one table per language). Run after changing a page's words:
    .venv/bin/python scripts/console_catalogs.py
tests/web/test_console_i18n.py fails when a message of the pages is missing from a catalog.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "casework" / "web" / "console"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> list[str | tuple[str, str]]:
    found: list = []
    for path in sorted(CONSOLE.rglob("*")):
        method = {".html": "jinja2.ext:babel_extract", ".py": "python"}.get(path.suffix)
        if method is None:
            continue
        for _line, message, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS):
            if message not in found:
                found.append(message)
    return found


def main() -> int:
    translations = tomllib.loads((ROOT / "scripts" / "console_translations.toml").read_text())
    messages = extract()
    missing = []
    for lang, table in translations.items():
        catalog = Catalog(locale=lang, domain="messages", project="casework console", charset="utf-8")
        for message in messages:
            key = message if isinstance(message, str) else message[0]
            if isinstance(message, tuple):
                given = table.get(key)
                plural = given if isinstance(given, list) else ["", ""]
                if lang != "en" and not given:
                    missing.append((lang, key))
                catalog.add(message, tuple(plural[: catalog.num_plurals]) if given else ("",) * catalog.num_plurals)
            else:
                text = table.get(key, "")
                if lang != "en" and not text:
                    missing.append((lang, key))
                catalog.add(message, text)
        out = CONSOLE / "locale" / lang / "LC_MESSAGES" / "messages.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            write_po(f, catalog, omit_header=False, sort_output=False, width=120)
    for lang, key in missing:
        print(f"{lang}: no translation for {key!r}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
