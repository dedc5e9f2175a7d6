"""Reductions in float64 over the reduced axes of a tensor: views, moments, order statistics."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from bioimageio_core.stats.measures import BATCH_AXIS, Array, MeasureValue, QuantileMethod
from bioimageio_core.tensor import Tensor


def reduced_view(
    tensor: Tensor, axes: tuple[str, ...] | None
) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    """The tensor's data (its own dtype) with the kept axes first and all reduced axes flattened
    into the last one: a view of the data where the layout allows, else a copy."""
    if axes is None:
        reduced = tensor.dims
    else:
        missing = [a for a in axes if a not in tensor.dims]
        if missing:
            raise KeyError(
                f"cannot reduce over axes {list(missing)}: the tensor's axes are {tensor.dims}"
            )
        reduced = tuple(d for d in tensor.dims if d in axes)
    kept = tuple(d for d in tensor.dims if d not in reduced)
    moved = np.asarray(tensor.transpose(kept + reduced).data)
    if moved.dtype.kind == "b":
        moved = moved.astype(np.uint8)
    elif moved.dtype.kind not in "iuf":
        moved = moved.astype(np.float64)
    return moved.reshape(*moved.shape[: len(kept)], -1), kept


def wrap(
    values: np.ndarray[Any, Any], kept: tuple[str, ...], axes: tuple[str, ...] | None
) -> MeasureValue:
    if axes is None:
        return float(values)
    return Tensor(values, kept)


_CHUNK_VALUES = 1 << 16
"""Values per chunk of the float64 reductions: small enough to stay in cache, large enough that
the loop over chunks costs nothing."""


def piece_step(rows: int) -> int:
    """Values per row in one float64 piece of the reductions (see :func:`float64_chunks`)."""
    return max(1, _CHUNK_VALUES // max(1, rows))


def float64_chunks(flat: np.ndarray[Any, Any]) -> Iterator[np.ndarray[Any, Any]]:
    """``flat`` in float64 pieces along its last axis."""
    step = piece_step(int(np.prod(flat.shape[:-1], dtype=np.int64)))
    for start in range(0, flat.shape[-1], step):
        yield np.asarray(flat[..., start : start + step], dtype=np.float64)


def mean_var(
    flat: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(count of non-NaN values, NaN-skipping mean, population M2 propagating NaN) over the last axis.

    Accumulates in float64 chunk by chunk, so the data is never copied whole; data with NaN or
    infinite values takes the slower NaN-aware path.
    """
    n_total = flat.shape[-1]
    total = np.zeros(flat.shape[:-1], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the NaN path below
        for chunk in float64_chunks(flat):
            total += chunk.sum(axis=-1)
    if not np.all(np.isfinite(total)):
        return mean_var_with_nan(np.asarray(flat, dtype=np.float64))
    n = np.full(flat.shape[:-1], float(n_total))
    mean = total / n if n_total else total
    m2 = np.zeros_like(total)
    for chunk in float64_chunks(flat):
        centered = chunk - mean[..., None]
        m2 += np.einsum("...i,...i->...", centered, centered)
    return n, mean, m2


def mean_var_with_nan(
    flat: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """:func:`mean_var` of float64 data that may hold NaN or infinite values."""
    valid = ~np.isnan(flat)
    n = valid.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(valid, flat, 0.0).sum(axis=-1)
        mean = np.where(n > 0, total / np.where(n > 0, n, 1.0), 0.0)
        centered = flat - mean[..., None]
        m2 = np.einsum("...i,...i->...", centered, centered)
    return n, mean, m2


def nan_where_empty(n: np.ndarray[Any, Any], value: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.where(n > 0, value, np.nan)


def quantile_values(
    flat: np.ndarray[Any, Any],
    qs: Sequence[float],
    method: QuantileMethod,
    *,
    overwrite: bool = False,
) -> np.ndarray[Any, Any]:
    """Quantiles over the last axis, NaN skipped; result (float64) has the quantile index first.

    NaN-free data is ordered in its own dtype (8 and 16 bit integers by counting, others by
    partitioning) and interpolated in float64: the numbers equal ``np.quantile`` of the float64
    data. ``overwrite``: ``flat`` may be reordered in place (saves a copy).
    """
    n = flat.shape[-1]
    if n == 0:
        return np.full((len(qs), *flat.shape[:-1]), np.nan)
    if flat.dtype.kind == "f" and flat.size and np.isnan(flat.min()):  # min propagates NaN
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
            return np.asarray(  # in float64, as the NaN-free path
                np.nanquantile(flat.astype(np.float64), list(qs), axis=-1, method=method)
            )
    q = np.asarray(qs, dtype=np.float64)
    lower, upper, gamma = ranks(np.intp(n), q, method)
    if method == "inverted_cdf":
        return order_statistics(flat, lower, overwrite)
    values = order_statistics(flat, np.concatenate([lower, upper]), overwrite)
    shape = (-1, *([1] * (flat.ndim - 1)))
    return lerp(values[: len(q)], values[len(q) :], gamma.reshape(shape))


def ranks(
    n: np.ndarray[Any, Any] | np.integer[Any],
    q: np.ndarray[Any, Any] | float,
    method: QuantileMethod,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The 0-based ranks of the order statistics below and above quantile ``q`` of ``n`` (>= 1)
    values, and the interpolation weight of the upper one, by numpy's rules (``n`` and ``q``
    broadcast). For ``inverted_cdf`` both ranks are the one value numpy picks."""
    n = np.asarray(n, dtype=np.intp)
    q = np.asarray(q, dtype=np.float64)
    if method == "inverted_cdf":  # numpy's index rule for this discrete method
        index = n * q - 1
        below = np.floor(index)
        k = np.clip(np.where(index == below, below, below + 1), 0, n - 1).astype(np.intp)
        return k, k, np.zeros(k.shape)
    virtual = q * (n - 1)
    below = np.floor(virtual)
    lower = below.astype(np.intp)
    upper = np.minimum(lower + 1, n - 1)
    return lower, upper, virtual - below


def lerp(
    a: np.ndarray[Any, Any], b: np.ndarray[Any, Any], gamma: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """numpy's interpolation between neighbouring order statistics, step by step (same rounding)."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in numpy
        diff = b - a
        result: Array = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return result


_COUNTING_MIN_FACTOR = 2
"""8 and 16 bit integers are counted (not partitioned) from this many values per possible value:
counting is linear in the values plus the 256 or 65536 counters."""


def order_statistics(
    flat: np.ndarray[Any, Any], ks: np.ndarray[Any, Any], overwrite: bool
) -> np.ndarray[Any, Any]:
    """The ``ks``-th smallest values (0-based) along the last axis, as float64 with the ``ks``
    index first; ``flat`` holds no NaN."""
    n = flat.shape[-1]
    bits = flat.dtype.itemsize * 8
    if flat.dtype.kind in "iu" and bits <= 16 and n >= _COUNTING_MIN_FACTOR << bits:
        return counted_order_statistics(flat, ks)
    kth = np.unique(ks)
    if overwrite:
        flat.partition(kth, axis=-1)
        part = flat
    else:
        part = np.partition(flat, kth, axis=-1)
    return np.moveaxis(np.asarray(part[..., ks], dtype=np.float64), -1, 0)


def counted_order_statistics(
    flat: np.ndarray[Any, Any], ks: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Order statistics of 8 or 16 bit integers by counting each value: one pass, no sort."""
    bits = flat.dtype.itemsize * 8
    codes = flat
    offset = 0
    if flat.dtype.kind == "i":  # flipping the sign bit maps signed order onto unsigned codes
        offset = 1 << (bits - 1)
        unsigned = np.dtype(f"u{flat.dtype.itemsize}")
        codes = flat.view(unsigned) ^ unsigned.type(offset)
    rows = codes.reshape(-1, flat.shape[-1])
    out = np.empty((len(ks), rows.shape[0]), dtype=np.float64)
    for r, row in enumerate(rows):
        cumulative = np.cumsum(np.bincount(row, minlength=1 << bits))
        out[:, r] = np.searchsorted(cumulative, ks, side="right") - offset
    return out.reshape(len(ks), *flat.shape[:-1])


def dataset_view(
    tensor: Tensor, axes: tuple[str, ...] | None
) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    # dataset axes are None or contain batch; a tensor without a batch axis is one sample
    if axes is not None:
        axes = tuple(a for a in axes if a != BATCH_AXIS or BATCH_AXIS in tensor.dims)
    return reduced_view(tensor, axes)


@attrs.define
class Moments:
    n: np.ndarray[Any, Any]
    mean: np.ndarray[Any, Any]
    m2: np.ndarray[Any, Any]

    def merge(
        self, n_b: np.ndarray[Any, Any], mean_b: np.ndarray[Any, Any], m2_b: np.ndarray[Any, Any]
    ) -> None:
        """Chan et al.'s parallel update (the formula bioimageio.core uses)."""
        n = self.n + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            safe_n = np.where(n > 0, n, 1.0)
            delta = mean_b - self.mean
            mean = (self.n * self.mean + n_b * mean_b) / safe_n
            m2 = self.m2 + m2_b + delta**2 * self.n * n_b / safe_n
        self.n, self.mean, self.m2 = n, mean, m2
