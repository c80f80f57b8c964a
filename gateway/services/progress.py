"""How a long service call lets its caller show how far it got (the CLI draws a progress bar): the call
walks its items through a Track, told how many there are."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Track(Protocol):
    def __call__(self, items: Iterable[T], length: int, /) -> Iterable[T]: ...


def untracked(items: Iterable[T], length: int, /) -> Iterable[T]:
    """No one is watching: the items as they are."""
    return items
