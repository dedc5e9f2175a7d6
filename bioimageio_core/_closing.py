"""``with obj:`` for objects that hold something (a connection, a progress bar) until closed."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

C = TypeVar("C", bound="Closing")


class Closing:
    """Base class: leaving a ``with`` block calls :meth:`close`, whatever happened inside."""

    def close(self) -> None:
        """Release what the object holds; calling it again does nothing."""
        raise NotImplementedError

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
