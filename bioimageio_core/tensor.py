"""Tensors: numpy arrays with named axes (axis ids as in the model description)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import attrs
import numpy as np
import numpy.typing as npt

from bioimageio_core.errors import InputError

PadMode = Literal["reflect", "symmetric", "edge", "constant"]
"""Border modes for :meth:`Tensor.pad` (numpy semantics; ``constant`` pads zeros)."""

PAD_MODES: tuple[str, ...] = get_args(PadMode)


@attrs.frozen(eq=False)
class Padding:
    """How an array is extended beyond its border: a numpy pad ``mode`` and, for ``constant``,
    the fill ``value``.

    ``value`` is a number or an array that broadcasts against the padded array and has size 1
    along every padded axis (e.g. one fill value per channel: shape ``(1, C, 1, 1)``).
    """

    mode: PadMode = "reflect"
    value: float | np.ndarray[Any, Any] = 0.0

    def __attrs_post_init__(self) -> None:
        if self.mode not in PAD_MODES:
            raise ValueError(f"unknown pad mode {self.mode!r}; use one of {', '.join(PAD_MODES)}")

    def __repr__(self) -> str:
        value = f", value={self.value!r}" if self.mode == "constant" else ""
        return f"Padding({self.mode!r}{value})"


def pad_array(
    array: np.ndarray[Any, Any],
    widths: Sequence[tuple[int, int]],
    mode: PadMode | Padding = "reflect",
) -> np.ndarray[Any, Any]:
    """Pad ``array`` by ``(left, right)`` per dimension; returns ``array`` itself when no padding.

    ``reflect`` mirrors without repeating the edge (numpy ``reflect``), ``symmetric`` repeats it,
    ``edge`` repeats the border value, ``constant`` pads zeros (or the value of a
    :class:`Padding`). Widths larger than the axis are allowed (the pattern repeats, as in
    :func:`numpy.pad`).
    """
    padding = mode if isinstance(mode, Padding) else Padding(mode)
    widths = [(int(lo), int(hi)) for lo, hi in widths]
    if len(widths) != array.ndim:
        raise ValueError(f"{len(widths)} pad widths for an array with {array.ndim} dimensions")
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad widths must be >= 0; got {widths}")
    if not any(lo or hi for lo, hi in widths):
        return array
    if padding.mode != "constant":
        for (lo, hi), size in zip(widths, array.shape, strict=True):
            if size == 0 and (lo or hi):
                raise ValueError(f"cannot {padding.mode}-pad an empty axis; use mode 'constant'")
        try:
            return np.pad(array, widths, mode=padding.mode)
        except (MemoryError, ValueError, TypeError) as e:  # arguments checked: too large
            raise _too_large(array, widths, e) from None
    if not isinstance(padding.value, np.ndarray) or padding.value.ndim == 0:
        try:
            return np.pad(array, widths, mode="constant", constant_values=padding.value)
        except (MemoryError, ValueError, TypeError) as e:
            raise _too_large(array, widths, e) from None
    return _pad_with_array(array, widths, padding.value)


def _too_large(
    array: np.ndarray[Any, Any], widths: Sequence[tuple[int, int]], error: BaseException
) -> InputError:
    """The error for padding that cannot be allocated (an absurd size, or not enough memory)."""
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(array.shape, widths, strict=True))
    problem = "not enough memory" if isinstance(error, MemoryError) else "too large"
    return InputError(
        f"cannot pad an array of shape {array.shape} to shape {shape}: {problem} ({error})",
        hint="the model asks for a much larger input than given; check its axis sizes",
    )


def _pad_with_array(
    array: np.ndarray[Any, Any], widths: Sequence[tuple[int, int]], value: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Constant padding whose fill value varies along unpadded axes (e.g. per channel)."""
    if value.ndim != array.ndim:
        raise ValueError(
            f"fill value of shape {value.shape} does not fit an array with {array.ndim} dimensions"
        )
    for d, ((lo, hi), n, v) in enumerate(zip(widths, array.shape, value.shape, strict=True)):
        if v != 1 and (lo or hi or v != n):
            raise ValueError(
                f"fill value of shape {value.shape} must have size 1 along padded axis {d} and "
                f"the array's size ({n}) or 1 elsewhere"
            )
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(array.shape, widths, strict=True))
    try:
        out = np.empty(shape, dtype=array.dtype)
    except (MemoryError, ValueError, TypeError) as e:
        raise _too_large(array, widths, e) from None
    out[...] = value.astype(array.dtype, copy=False)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(array.shape, widths, strict=True))] = array
    return out


AXIS_LETTERS: Mapping[str, str] = {
    "b": "batch",
    "c": "channel",
    "t": "time",
    "i": "index",
    "x": "x",
    "y": "y",
    "z": "z",
}
"""Short letters accepted in an axes string, and the axis id each stands for."""


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

    @classmethod
    def from_numpy(cls, array: npt.ArrayLike, dims: Sequence[str] | str) -> Tensor:
        """Wrap ``array`` (no copy for numpy arrays); ``dims`` is a sequence of axis ids.

        A string of single letters is split into characters (``"bcyx"``), with the usual
        abbreviations expanded: ``b`` → ``batch``, ``c`` → ``channel``, ``i`` → ``index``,
        ``t`` → ``time``.
        """
        if isinstance(dims, str):
            dims = [AXIS_LETTERS.get(letter, letter) for letter in dims]
        return cls(array, dims)

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
        dtype: np.dtype[Any] = self._data.dtype
        return dtype

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

    def pad(
        self, widths: Mapping[str, tuple[int, int]], mode: PadMode | Padding = "reflect"
    ) -> Tensor:
        """Pad axes by ``{axis_id: (left, right)}``; other axes unchanged (see :func:`pad_array`)."""
        unknown = set(widths) - set(self._dims)
        if unknown:
            raise KeyError(f"tensor has no axes {sorted(unknown)}; its axes are {self._dims}")
        full = [widths.get(d, (0, 0)) for d in self._dims]
        return Tensor(pad_array(self._data, full, mode), self._dims)

    def crop(self, regions: Mapping[str, tuple[int, int]]) -> Tensor:
        """Slice axes to ``{axis_id: (start, stop)}``; a view."""
        return self[{d: slice(start, stop) for d, (start, stop) in regions.items()}]

    def expand_dims(self, axis_id: str, position: int = 0) -> Tensor:
        """Insert a singleton axis ``axis_id`` at ``position``; a view."""
        if axis_id in self._dims:
            raise ValueError(f"tensor already has axis {axis_id!r}")
        dims = list(self._dims)
        dims.insert(position, axis_id)
        return Tensor(np.expand_dims(self._data, position), dims)

    def squeeze(self, axis_id: str) -> Tensor:
        """Drop the singleton axis ``axis_id``; a view."""
        i = self.axis_index(axis_id)
        if self._data.shape[i] != 1:
            raise ValueError(f"cannot drop axis {axis_id!r} of size {self._data.shape[i]}")
        return self[{axis_id: 0}]

    def __array__(
        self, dtype: npt.DTypeLike | None = None, copy: bool | None = None
    ) -> np.ndarray[Any, Any]:
        if dtype is None:
            return self._data
        return self._data.astype(dtype, copy=bool(copy))

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
