"""How closely an output must reproduce its test output: :class:`Tolerance` and the rules by
which a description chooses it (:func:`get_tolerance`)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from bioimageio_core.spec import ModelDescr
from bioimageio_core.spec.tolerance import (
    DEFAULT_REPRODUCIBILITY_TOLERANCE,
    output_kind,
    select_tolerance,
)

DEFAULT_RELATIVE_TOLERANCE = 1e-3
DEFAULT_ABSOLUTE_TOLERANCE = 1e-3
DEFAULT_MISMATCHED_PPM = 100
"""Defaults of ``config.bioimageio.reproducibility_tolerance`` entries (format 0.5)."""


@attrs.frozen
class Tolerance:
    """How closely an output must reproduce its test output."""

    relative: float = DEFAULT_RELATIVE_TOLERANCE
    absolute: float = DEFAULT_ABSOLUTE_TOLERANCE
    mismatched_ppm: float = DEFAULT_MISMATCHED_PPM
    """Mismatched elements allowed per million elements."""
    source: str = attrs.field(default="defaults", eq=False)
    """Where the numbers come from, e.g. ``config.bioimageio.reproducibility_tolerance[1]
    (any_discrete_output)`` (for reports; not part of equality)."""

    @property
    def exact(self) -> bool:
        """No difference allowed per element (integer outputs are then compared as integers)."""
        return self.relative == 0 and self.absolute == 0

    def __str__(self) -> str:
        return (
            f"atol {self.absolute:g} + rtol {self.relative:g}·|expected|, "
            f"{self.mismatched_ppm:g} mismatched per million allowed"
        )


def get_tolerance(
    model: ModelDescr,
    output_id: str,
    weights_format: str,
    *,
    original_format_version: str | None = None,
) -> Tolerance:
    """The tolerance for one output and weight format, as bioimageio.core chooses it.

    Start from the defaults (0.4 models: no mismatched element allowed); a legacy
    ``config.bioimageio.test_kwargs[<weights format>]`` entry overrides ``relative_tolerance`` /
    ``absolute_tolerance`` (``decimal: d`` means atol ``1.5·10^-d``, rtol 0); the first
    ``config.bioimageio.reproducibility_tolerance`` entry that applies
    (:func:`bioimageio_core.spec.select_tolerance`: weight format, output id or the output's
    continuous/discrete data type) replaces everything. A model without the key has the format's
    default entries, which ``test_kwargs`` override; 0.3/0.4 models have no entries.

    Raises:
        ValueError: a ``test_kwargs`` value is not a number.
    """
    version = original_format_version or model.format_version
    legacy = version.startswith(("0.3", "0.4"))
    tol = Tolerance(
        mismatched_ppm=0 if legacy else DEFAULT_MISMATCHED_PPM,
        source=f"defaults of format {version[:3]}",
    )
    bioimageio = model.config.bioimageio
    test_kwargs = bioimageio.extra.get("test_kwargs") if bioimageio.extra else None
    kwargs = test_kwargs.get(weights_format) if isinstance(test_kwargs, Mapping) else None
    if isinstance(kwargs, Mapping):

        def number(key: str, default: float) -> float:
            value = kwargs.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"config.bioimageio.test_kwargs.{weights_format}.{key} must be a number "
                    f"(got {value!r})"
                )
            return float(value)

        source = f"config.bioimageio.test_kwargs.{weights_format}"
        if kwargs.get("decimal") is not None:
            tol = attrs.evolve(
                tol, absolute=1.5 * 10 ** -number("decimal", 0), relative=0.0, source=source
            )
        else:
            tol = attrs.evolve(
                tol,
                relative=number("relative_tolerance", DEFAULT_RELATIVE_TOLERANCE),
                absolute=number("absolute_tolerance", DEFAULT_ABSOLUTE_TOLERANCE),
                source=source,
            )
    if legacy:
        return tol  # format 0.4 has no reproducibility_tolerance
    entries = bioimageio.reproducibility_tolerance
    if isinstance(kwargs, Mapping) and entries == DEFAULT_REPRODUCIBILITY_TOLERANCE:
        return tol  # the author's test_kwargs beat the format's default entries
    dtype = model.get_tensor(output_id).dtype if _has_output(model, output_id) else "float32"
    entry = select_tolerance(entries, output_id, dtype, weights_format)
    if entry is not None:
        if entries == DEFAULT_REPRODUCIBILITY_TOLERANCE:
            source = f"format default for {output_kind(dtype)} outputs"
        else:
            ids = entry.output_ids
            which = ids if isinstance(ids, str) else ", ".join(ids) or "every output"
            source = (
                f"config.bioimageio.reproducibility_tolerance[{entries.index(entry)}] ({which})"
            )
        return Tolerance(
            relative=entry.relative_tolerance,
            absolute=entry.absolute_tolerance,
            mismatched_ppm=entry.mismatched_elements_per_million,
            source=source,
        )
    return tol


def _has_output(model: ModelDescr, output_id: str) -> bool:
    return any(o.id == output_id for o in model.outputs)
