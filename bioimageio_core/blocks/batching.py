"""Grouping consecutive blocks of one shape into batches."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")


def batched(
    items: Iterable[T], batch_size: int, key: Callable[[T], Hashable] | None = None
) -> Iterator[list[T]]:
    """Group consecutive items with equal ``key`` (default: their ``shape``) into lists of at
    most ``batch_size``; lazy, holds one batch at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")

    def default_key(item: T) -> Hashable:
        shape = getattr(item, "shape", None)
        if isinstance(shape, Mapping):
            return tuple(sorted(shape.items()))
        return shape  # type: ignore[no-any-return]

    get_key = key or default_key
    batch: list[T] = []
    batch_key: Hashable = None
    for item in items:
        k = get_key(item)
        if batch and (k != batch_key or len(batch) == batch_size):
            yield batch
            batch = []
        if not batch:
            batch_key = k
        batch.append(item)
    if batch:
        yield batch
