"""Match a serving signature's input/output names to the description's tensor ids.

Rule (documented in the README): when the signature's names are exactly the tensor ids, tensors are
matched by name. Otherwise they are matched by position, with the signature's names in *natural*
order (``output_0, output_1, …, output_10``): TensorFlow stores signature inputs and outputs as
maps, so this is the order a function returning a tuple declared them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bioimageio_core.plugin import match_tensors

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: ``x2 < x10``."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(name) if part
    )


def match_signature(
    names: Iterable[str], tensor_ids: Sequence[str], *, what: str, source: str
) -> tuple[str, ...]:
    """The signature names in description order (one per tensor id)."""
    ordered = sorted(names, key=natural_key)
    positions = match_tensors(
        ordered,
        tensor_ids,
        what=what,
        holder=f"the serving signature of {source}",
        noun="signature",
    )
    return tuple(ordered[i] for i in positions)
