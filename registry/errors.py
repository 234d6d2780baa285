"""Errors the registry raises, each naming the field and the limit it broke."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RegistryError(Exception):
    """Base class for every error the registry reports to a caller."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    Parameters
    ----------
    field : str
        Dotted name of the offending field, e.g. ``"p_max_kw"`` or ``"readings.3.soc_frac"``.
    message : str
        What is wrong, in words that name the limit.
    value : Any
        The value that was given (``None`` when it was missing).
    limit : Any
        The limit it broke, when there is one.
    """

    field: str
    message: str
    value: Any = None
    limit: Any = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        if self.limit is not None:
            out["limit"] = self.limit
        return out


@dataclass
class InvalidInput(RegistryError):
    """The input breaks one or more limits; nothing was written."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)


@dataclass
class NotFound(RegistryError):
    """A referenced object does not exist."""

    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key!r} not found"


@dataclass
class Conflict(RegistryError):
    """The write would duplicate or contradict what is already stored."""

    field: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"
