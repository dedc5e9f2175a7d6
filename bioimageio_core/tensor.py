"""Tensors: numpy arrays with named axes (axis ids as in the model description)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


class Tensor:
    """An n-dimensional array whose axes are named by axis ids (``"batch"``, ``"channel"``, ``"x"`` …).

    The wrapped data is kept as given (a view where possible); operations return new tensors and
    never copy unless the result needs new memory.
    """

    __slots__ = ("_data", "_dims")

    def __init__(self, data: npt.ArrayLike, dims: Sequence[str]) -> None:
        array = data if isinstance(data, np.ndarray) else np.asarray(data)
        dims = tuple(str(d) for d in dims)
        if array.ndim != len(dims):
            raise ValueError(
                f"array with {array.ndim} dimensions (shape {array.shape}) cannot take "
                f"{len(dims)} axis ids {dims}"
            )
        if len(set(dims)) != len(dims):
            raise ValueError(f"axis ids must be unique; got {dims}")
        self._data: np.ndarray[Any, Any] = array
        self._dims: tuple[str, ...] = dims

    @property
    def data(self) -> np.ndarray[Any, Any]:
        return self._data

    @property
    def dims(self) -> tuple[str, ...]:
        return self._dims

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self._dims, self._data.shape, strict=True))

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def axis_index(self, axis_id: str) -> int:
        try:
            return self._dims.index(axis_id)
        except ValueError:
            raise KeyError(f"tensor has no axis {axis_id!r}; its axes are {self._dims}") from None

    def transpose(self, dims: Sequence[str]) -> Tensor:
        """Reorder axes to ``dims`` (which must be a permutation of :attr:`dims`); a view."""
        dims = tuple(dims)
        if sorted(dims) != sorted(self._dims):
            raise ValueError(f"cannot transpose axes {self._dims} to {dims}")
        return Tensor(self._data.transpose([self._dims.index(d) for d in dims]), dims)

    def isel(self, **slices: int | slice) -> Tensor:
        """Index by axis id: ``t.isel(x=slice(0, 10))``; integer indices drop the axis."""
        return self[slices]

    def __getitem__(self, index: Mapping[str, int | slice]) -> Tensor:
        key: list[int | slice] = []
        dims: list[str] = []
        for d in self._dims:
            sel = index.get(d, slice(None))
            key.append(sel)
            if not isinstance(sel, int):
                dims.append(d)
        unknown = set(index) - set(self._dims)
        if unknown:
            raise KeyError(f"tensor has no axes {sorted(unknown)}; its axes are {self._dims}")
        return Tensor(self._data[tuple(key)], dims)

    def astype(self, dtype: npt.DTypeLike) -> Tensor:
        return Tensor(self._data.astype(dtype, copy=False), self._dims)

    def with_data(self, data: npt.ArrayLike) -> Tensor:
        return Tensor(data, self._dims)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        return f"Tensor({sizes}; dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        return self._dims == other._dims and np.array_equal(self._data, other._data, equal_nan=True)

    __hash__ = None  # type: ignore[assignment]
