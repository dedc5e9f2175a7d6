"""How closely an output reproduces its expected output: :func:`compare_arrays`, pure over arrays.

Arrays are compared in float32; an element is mismatched when
``|actual - expected| > atol + rtol * |expected|`` (asymmetric, as :func:`numpy.isclose`; NaN
never matches). Integer arrays under an exact tolerance are compared in their own types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from bioimageio_core.testing.tolerance import Tolerance

Array = np.ndarray[Any, Any]

N_WORST = 3
"""How many of the worst mismatched elements a report names."""


@attrs.frozen
class Mismatch:
    """One element that differs: its index, the actual and the expected value."""

    index: tuple[int, ...]
    actual: float
    expected: float


@attrs.frozen
class Comparison:
    """Result of comparing an output with its expected (test) output."""

    tolerance: Tolerance
    size: int
    mismatched: int
    """Elements with ``|a - e| > atol + rtol·|e|`` (or NaN)."""
    max_abs_error: float
    """``max |a - e|`` (NaN when any element is NaN in one array only)."""
    max_rel_error: float
    """``max |a - e| / (|e| + 1e-6)``."""
    max_excess: float
    """``max(|a - e| - rtol·|e|)``: the largest absolute difference beyond the relative part."""
    worst: tuple[Mismatch, ...] = ()
    """The worst mismatched elements (largest excess over the allowed difference first)."""

    @property
    def ppm(self) -> float:
        """Mismatched elements per million."""
        return self.mismatched / self.size * 1e6 if self.size else 0.0

    @property
    def passed(self) -> bool:
        return self.ppm <= self.tolerance.mismatched_ppm

    def describe(self, axes: Sequence[str] | None = None) -> str:
        """One paragraph: errors, mismatch count against the allowance, worst elements."""
        text = (
            f"max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}; "
            f"{self.mismatched} of {self.size} elements mismatched ({self.ppm:.4g} per million, "
            f"{self.tolerance.mismatched_ppm:g} allowed) "
            + (
                "compared exactly"
                if self.tolerance.exact
                else f"with atol {self.tolerance.absolute:g}, rtol {self.tolerance.relative:g}"
            )
            + f" (tolerance: {self.tolerance.source})"
        )
        if self.worst:
            text += "; worst at " + ", ".join(
                f"{_index_text(m.index, axes)}: {m.actual:.6g} instead of {m.expected:.6g}"
                for m in self.worst
            )
        return text


def _index_text(index: tuple[int, ...], axes: Sequence[str] | None) -> str:
    if axes is None or len(axes) != len(index):
        return str(index)
    return "(" + ", ".join(f"{a}={i}" for a, i in zip(axes, index, strict=True)) + ")"


def compare_arrays(
    actual: npt.ArrayLike,
    expected: npt.ArrayLike,
    tolerance: Tolerance | None = None,
    *,
    n_worst: int = N_WORST,
) -> Comparison:
    """Compare ``actual`` with ``expected`` (same shape) in float32 under ``tolerance``.

    ``tolerance`` defaults to :class:`Tolerance` (rtol 1e-3, atol 1e-3, 100 per million).

    Raises:
        ValueError: the shapes differ.
    """
    tolerance = tolerance or Tolerance()
    a_native, e_native = np.asarray(actual), np.asarray(expected)
    if a_native.shape != e_native.shape:
        raise ValueError(f"shape {a_native.shape} differs from the expected shape {e_native.shape}")
    if tolerance.exact and a_native.dtype.kind in "biu" and e_native.dtype.kind in "biu":
        return _compare_exactly(a_native, e_native, tolerance, n_worst)
    a = np.asarray(a_native, dtype=np.float32)
    e = np.asarray(e_native, dtype=np.float32)
    rtol = np.float32(tolerance.relative)
    atol = np.float32(tolerance.absolute)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        rel_part = rtol * np.abs(e)
        excess = diff - rel_part
        # as numpy.isclose: infinities match only an equal infinity, NaN matches nothing
        ok = np.where(np.isfinite(a) & np.isfinite(e), diff <= atol + rel_part, a == e)
    mismatched_mask = ~ok
    n_mismatched = int(np.count_nonzero(mismatched_mask))
    if a.size == 0:
        return Comparison(tolerance, 0, 0, 0.0, 0.0, 0.0)
    finite = np.where(a == e, np.float32(0), diff)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel = finite / (np.abs(e) + np.float32(1e-6))
    worst: tuple[Mismatch, ...] = ()
    if n_mismatched and n_worst > 0:
        # rank mismatches by excess; NaN differences (NaN in one array) rank first
        score = np.where(mismatched_mask, np.nan_to_num(excess, nan=np.inf), -np.inf).ravel()
        k = min(n_worst, n_mismatched)
        top = np.argpartition(-score, k - 1)[:k]
        top = top[np.argsort(-score[top], kind="stable")]
        worst = tuple(
            Mismatch(
                tuple(int(i) for i in np.unravel_index(int(flat), a.shape)),
                float(a.flat[flat]),
                float(e.flat[flat]),
            )
            for flat in top
        )
    return Comparison(
        tolerance=tolerance,
        size=int(a.size),
        mismatched=n_mismatched,
        max_abs_error=_nanmax_or_nan(finite),
        max_rel_error=_nanmax_or_nan(rel),
        max_excess=_nanmax_or_nan(np.where(a == e, np.float32(0), excess)),
        worst=worst,
    )


def _compare_exactly(a: Array, e: Array, tolerance: Tolerance, n_worst: int) -> Comparison:
    """Integer (or boolean) arrays element by element in their own types: no float32 rounding of
    large labels."""
    if a.size == 0:
        return Comparison(tolerance, 0, 0, 0.0, 0.0, 0.0)
    mismatched = a != e
    n_mismatched = int(np.count_nonzero(mismatched))
    diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
    rel = diff / (np.abs(e.astype(np.float64)) + 1e-6)
    worst: tuple[Mismatch, ...] = ()
    if n_mismatched and n_worst > 0:
        flat = np.flatnonzero(mismatched)
        k = min(n_worst, flat.size)
        order = np.argsort(-diff.flat[flat], kind="stable")[:k]
        worst = tuple(
            Mismatch(
                tuple(int(i) for i in np.unravel_index(int(f), a.shape)),
                float(a.flat[f]),
                float(e.flat[f]),
            )
            for f in flat[order]
        )
    max_abs = float(diff.max())
    return Comparison(
        tolerance=tolerance,
        size=int(a.size),
        mismatched=n_mismatched,
        max_abs_error=max_abs,
        max_rel_error=float(rel.max()),
        max_excess=max_abs,
        worst=worst,
    )


def _nanmax_or_nan(x: Array) -> float:
    """The maximum of ``x``, NaN when any element is NaN."""
    return float(np.max(x)) if x.size else 0.0
