"""``with obj:`` for objects that hold something (a connection, a progress bar) until closed."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

C = TypeVar("C", bound="Closing")


class Closing:
    """Base class: leaving a ``with`` block calls :meth:`close`, whatever happened inside."""

    __slots__ = ()

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
        self._leave(exc)

    def _leave(self, error: BaseException | None) -> None:
        """What leaving a ``with`` block does (``error``: the exception that ends it, if any)."""
        self.close()


class Committing(Closing):
    """Base class for an output that is complete or absent: leaving a ``with`` block normally
    calls :meth:`commit`; an exception calls :meth:`failed`, which cleans up and returns the error
    to raise (the same one, or one that says what happened to the output)."""

    __slots__ = ()

    def commit(self) -> object:
        """Put the finished output in place."""
        raise NotImplementedError

    def failed(self, error: BaseException) -> BaseException:
        """Clean up after ``error`` and return the error to raise for it."""
        raise NotImplementedError

    def _leave(self, error: BaseException | None) -> None:
        if error is None:
            self.commit()
            return
        converted = self.failed(error)
        if converted is not error:
            raise converted from error
