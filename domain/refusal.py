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
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
                     for e in errors())
