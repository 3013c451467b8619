"""Which fields of a case are the customer's personal data, and how a value looks once it is gone.

A field is personal when its declaration says so (`Annotated[str, PERSONAL]`): the customer's name and
contact, the free text people write about them (subject, description, messages, notes, reasons,
on-site place and need). Ids, enums, instants and numbers are not: the reports and the rules run on
them, and a customer id is a pseudonymous key (docs/security-data.md). Everything here is pure: the
store seals these fields with the customer's key, the workflow and the projections scrub them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel

# What a personal field reads once the customer's key is destroyed (crypto-shredding).
FORGOTTEN = "[forgotten]"
# What the reporting tables keep of a personal field: nothing (they never need the text).
WITHHELD = "[withheld]"


class _Personal:
    def __repr__(self) -> str:
        return "PERSONAL"


PERSONAL = _Personal()  # the marker, in a field's Annotated metadata

Path = tuple[str, ...]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (X, X | None, Optional[X], list[X]: a case's surveys)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) if arg is not Ellipsis for m in _models_in(arg)]
    return []


@cache
def personal_paths(model: type[BaseModel]) -> tuple[Path, ...]:
    """Every personal field of `model`, nested models included, as paths (('customer', 'name'), ...)."""
    paths: list[Path] = []
    for name, field in model.model_fields.items():
        if any(m is PERSONAL for m in field.metadata):
            paths.append((name,))
            continue
        for inner in _models_in(field.annotation):
            paths.extend((name, *rest) for rest in personal_paths(inner))
    return tuple(paths)


def map_personal(data: dict[str, Any], paths: tuple[Path, ...],
                 fn: Callable[[str, str], str]) -> dict[str, Any]:
    """A copy of `data` (a model's JSON form) with fn(dotted path, text) applied to each personal text.

    Absent and null values stay as they are (there is nothing to protect); lists of texts are mapped
    item by item."""
    out = dict(data)
    for path in paths:
        out = _at(out, path, fn, ".".join(path))
    return out


def _at(data: dict[str, Any], path: Path, fn: Callable[[str, str], str], dotted: str) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    value = data.get(head)
    if value is None:
        return data
    if rest:
        if isinstance(value, list):  # a list of models: each item's field
            return {**data, head: [_at(v, rest, fn, dotted) if isinstance(v, dict) else v for v in value]}
        if not isinstance(value, dict):
            return data
        return {**data, head: _at(value, rest, fn, dotted)}
    if isinstance(value, str):
        return {**data, head: fn(dotted, value)}
    if isinstance(value, list):
        return {**data, head: [fn(dotted, v) if isinstance(v, str) else v for v in value]}
    return data


M = typing.TypeVar("M", bound=BaseModel)


def scrub(model: M, placeholder: str = FORGOTTEN) -> M:
    """The same model with every personal text replaced by `placeholder` (empty texts stay empty)."""
    data = map_personal(model.model_dump(mode="json"), personal_paths(type(model)),
                        lambda _path, text: placeholder if text else text)
    return type(model).model_validate(data)
