"""The one refusal: raised by the rules, carried by the workflow, raised again by the client."""

from __future__ import annotations


class CommandRefused(Exception):
    """A command the rules do not allow; `code` is stable for machines, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
