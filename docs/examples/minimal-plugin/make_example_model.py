"""Write ``example-model/``: a ``linear_npz`` model description with weights and test tensors.

Reproducible (fixed seed, fixed zip timestamps): running it again gives the same bytes.

    python make_example_model.py
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent / "example-model"

RDF = """\
# A model whose weights use the plugin's weight format `linear_npz` and whose preprocessing uses
# the plugin's op `example_power`. Written by ../make_example_model.py.
format_version: 0.5.4
type: model
name: Example linear channel mixer
description: Mixes two input channels into three output channels, pixel by pixel; an example of
  a bioimageio-run plugin weight format (linear_npz) and op (example_power).
authors:
- name: bioimageio-run developers
cite:
- text: bioimageio-run plugin author guide
  url: https://bioimage.io
license: MIT
documentation: README.md
version: 0.1.0
inputs:
- id: raw
  axes:
  - type: batch
  - type: channel
    channel_names: [red, green]
  - type: space
    id: y
    size: {{min: 8, step: 8}}
  - type: space
    id: x
    size: {{min: 8, step: 8}}
  data:
    type: float32
  test_tensor:
    source: test_input.npy
    sha256: {test_input}
  preprocessing:
  - id: example_power           # the plugin's op
    kwargs:
      exponent: 0.5
      divide_by_mean: true
      axes: [y, x]
outputs:
- id: mixed
  axes:
  - type: batch
  - type: channel
    channel_names: [a, b, c]
  - type: space
    id: y
    size: {{tensor_id: raw, axis_id: y}}
  - type: space
    id: x
    size: {{tensor_id: raw, axis_id: x}}
  data:
    type: float32
  test_tensor:
    source: test_output.npy
    sha256: {test_output}
  postprocessing:
  - id: sigmoid                 # a built-in op
weights:
  linear_npz:                   # the plugin's weight format
    source: weights.npz
    sha256: {weights}
    layout: out_in
"""

README = """\
# Example linear channel mixer

A model of the minimal plugin example (`docs/examples/minimal-plugin`): its weights use the
plugin's `linear_npz` format, its preprocessing the plugin's `example_power` op. It needs
`pip install -c constraints.txt docs/examples/minimal-plugin` next to bioimageio-run.
"""


def npz_bytes(**arrays: npt.NDArray[Any]) -> bytes:
    """An .npz file (what ``np.savez`` writes) with fixed timestamps, so its sha256 is stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.save(member, array)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, member.getvalue())
    return buffer.getvalue()


def npy_bytes(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def expected_output(
    x: npt.NDArray[Any], weight: npt.NDArray[Any], bias: npt.NDArray[Any]
) -> npt.NDArray[np.float32]:
    """The model's output written out with einsum (independent of the plugin's code)."""
    x = x.astype(np.float32)
    mean = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    scaled = x / (mean + np.float32(1e-6))
    pre = np.sign(scaled) * np.abs(scaled) ** np.float32(0.5)
    mixed = np.einsum("ok,bkyx->boyx", weight, pre) + bias[None, :, None, None]
    result: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-mixed))).astype(np.float32)
    return result


def main() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 2)).astype(np.float32)
    bias = np.array([0.1, -0.2, 0.0], dtype=np.float32)
    x = rng.uniform(0.0, 4.0, size=(1, 2, 16, 24)).astype(np.float32)
    files = {
        "weights": ("weights.npz", npz_bytes(weight=weight, bias=bias)),
        "test_input": ("test_input.npy", npy_bytes(x)),
        "test_output": ("test_output.npy", npy_bytes(expected_output(x, weight, bias))),
    }
    HERE.mkdir(exist_ok=True)
    hashes = {}
    for key, (name, data) in files.items():
        (HERE / name).write_bytes(data)
        hashes[key] = hashlib.sha256(data).hexdigest()
    (HERE / "rdf.yaml").write_text(RDF.format(**hashes), encoding="utf-8")
    (HERE / "README.md").write_text(README, encoding="utf-8")
    print(f"wrote {HERE}")


if __name__ == "__main__":
    main()
