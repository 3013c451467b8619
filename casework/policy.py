"""Reading an SLA policy file (TOML or YAML) into the validated model; errors name the bad entry."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from pydantic import ValidationError

from domain.calendar import holidays_from_ics
from domain.sla import SlaPolicy

DEFAULT_POLICY = Path(__file__).resolve().parent / "policies" / "default.toml"


class PolicyError(Exception):
    pass


def load_policy(path: str | Path | None = None) -> SlaPolicy:
    path = Path(path or DEFAULT_POLICY)
    try:
        text = path.read_text()
    except OSError as err:
        raise PolicyError(f"SLA policy {path}: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise PolicyError(f"SLA policy {path} does not parse: {err}") from None
    for name, cal in (raw.get("calendars") or {}).items():
        ics = cal.pop("holidays_ics", None) if isinstance(cal, dict) else None
        if ics:
            ics_path = (path.parent / ics).resolve()
            try:
                cal["holidays"] = [*cal.get("holidays", []), *holidays_from_ics(ics_path.read_text())]
            except OSError as err:
                raise PolicyError(f"SLA policy {path}: calendars.{name}.holidays_ics {ics_path}: "
                                  f"{err.strerror}") from None
    try:
        return SlaPolicy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"SLA policy {path}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())) from None
