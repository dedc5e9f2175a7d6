from __future__ import annotations

import numpy as np
import pytest

from bioimageio_core.sample import Sample
from bioimageio_core.tensor import Tensor


def test_sample_members_stat_and_shape() -> None:
    raw = Tensor(np.zeros((2, 3)), "yx")
    sample = Sample({"raw": raw}, id="s0")
    sample.stat["mean"] = 1.0
    assert sample.shape == {"raw": {"y": 2, "x": 3}}
    assert sample["raw"] is raw
    other = sample.with_members({"raw": raw.pad({"x": (1, 0)}, "edge")})
    assert other.id == "s0" and other.stat == {"mean": 1.0} and other.stat is not sample.stat
    assert other.shape == {"raw": {"y": 2, "x": 4}}
    with pytest.raises(KeyError, match="no member 'nope'"):
        sample["nope"]
