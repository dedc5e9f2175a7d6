"""Read: the input data of a block, cut out of the sample and padded where it reaches beyond."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import numpy as np

from bioimageio_core.blocks import SampleBlock, sample_block_data
from bioimageio_core.tensor import Padding, Tensor

Array = np.ndarray[Any, Any]


class BlockReader(Protocol):
    """``reader(block)`` → the block's data by input id (each of the block's full shape)."""

    def __call__(self, block: SampleBlock, /) -> dict[str, Array]: ...


@attrs.frozen(eq=False)
class MemberReader:
    """Blocks cut from a sample's members (arrays in memory or memory-mapped), each input padded
    as ``paddings`` says (reflect for inputs not named there)."""

    members: Mapping[str, Tensor]
    paddings: Mapping[str, Padding]

    def __call__(self, block: SampleBlock) -> dict[str, Array]:
        return sample_block_data(self.members, block, self.paddings)


__all__ = ["Array", "BlockReader", "MemberReader"]
