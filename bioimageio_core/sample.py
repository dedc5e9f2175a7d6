"""Samples: the tensors of one model call (by member id) plus their computed statistics."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import attrs

from bioimageio_core.tensor import Tensor


def _members(members: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return dict(members)


def _stat(stat: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    return dict(stat)


def _written(written: Mapping[str, Path]) -> dict[str, Path]:
    return dict(written)


@attrs.define(eq=False)
class Sample:
    """Tensors by member (tensor) id, the statistics computed on them, and a sample id.

    ``stat`` is a plain mutable dict keyed by hashable measure objects (filled by the statistics
    module); ``members`` may be replaced as processing steps run. ``written``: the files members
    were written to without being held here (outputs of an out-of-core prediction, by member
    id; read them with :func:`bioimageio_core.io.open_array`).
    """

    members: dict[str, Tensor] = attrs.field(converter=_members)
    stat: dict[Hashable, Any] = attrs.field(factory=dict, converter=_stat)
    id: Hashable = None
    written: dict[str, Path] = attrs.field(factory=dict, converter=_written, kw_only=True)

    @property
    def shape(self) -> dict[str, dict[str, int]]:
        """``{member_id: {axis_id: size}}``."""
        return {m: t.sizes for m, t in self.members.items()}

    def __getitem__(self, member_id: str) -> Tensor:
        try:
            return self.members[member_id]
        except KeyError:
            raise KeyError(
                f"sample {self.id!r} has no member {member_id!r}; its members are "
                f"{sorted(self.members)}"
            ) from None

    def with_members(self, members: Mapping[str, Tensor]) -> Sample:
        """A new sample with ``members``, a copy of the statistics and the same id."""
        return Sample(members=dict(members), stat=self.stat, id=self.id)
