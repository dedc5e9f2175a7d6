"""Facts about the published models in ``../shared/conformance`` that several tests rely on.

Import as ``from conformance_models import …`` (``tests/`` is on ``sys.path`` through
``tests/conftest.py``).
"""

from __future__ import annotations

UNET = "models/unet2d_nuclei_broad"
"""The U-Net folder, relative to the conformance data."""

UNET_LOCAL_FILES = (
    "cover0.png",
    "README.md",
    "test_input.npy",
    "test_input.png",
    "test_output.npy",
    "test_output.png",
    "weights.onnx",
    "weights.pt",
    "environment.yaml",
)
"""The files its 0.5 description references that are available offline (the pytorch_state_dict
entry also needs unet2d.py and a remote weights file, neither of which is part of the data)."""
