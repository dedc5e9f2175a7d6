"""Issues found in a converted 0.4 model point at the fields the user wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bioimageio_core.spec import build_description

MODEL = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "conformance"
    / "models"
    / "unet2d_nuclei_broad"
    / "v0_4_9.bioimageio.yaml"
)


@pytest.fixture
def raw_v04() -> dict[str, object]:
    if not MODEL.exists():
        pytest.skip(f"conformance data not found at {MODEL} (../shared is absent)")
    data = yaml.safe_load(MODEL.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_structuring_error_in_converted_model_has_the_0_4_path(raw_v04: dict) -> None:
    raw_v04["inputs"][0]["preprocessing"][0]["kwargs"]["eps"] = 5.0
    result = build_description(raw_v04)
    assert result.descr is None
    (error,) = result.errors
    # the 0.5 model has an ensure_dtype step first; the user's step is preprocessing[0]
    assert error.loc == ("inputs", 0, "preprocessing", 0, "kwargs", "eps")
    assert "after conversion to 0.5" in error.msg
    assert "$.inputs[0].preprocessing[1].kwargs.eps" in error.msg


def test_valid_converted_model_keeps_no_0_5_only_paths(raw_v04: dict) -> None:
    result = build_description(raw_v04)
    assert result.descr is not None
    assert not result.errors
