"""The one refusal: raised by the rules, carried by the workflow, raised again by the client."""

from __future__ import annotations


class CommandRefused(Exception):
    """A command the rules do not allow; `code` is stable for machines, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def in_words(err: Exception) -> str:
    """An error as a refusal's message: a pydantic ValidationError on one line (`where: what` per
    problem), without its input dump and documentation link, which are for the developer, not the sender."""
    errors = getattr(err, "errors", None)
    if not callable(errors):
        return str(err)
    return "; ".join(_one(e) for e in errors())


def _one(error: dict) -> str:
    # "Value error, " is how pydantic prefixes a validator's own ValueError: noise to the reader.
    msg = error["msg"].removeprefix("Value error, ")
    return f"{'.'.join(str(p) for p in error['loc'])}: {msg}" if error["loc"] else msg
