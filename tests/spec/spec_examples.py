"""Raw model 0.5 descriptions used by the spec tests (fresh dicts on every call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SHA = "a" * 64

Mutation = Callable[[dict[str, Any]], None]
"""A change made to a raw description in place."""


def pre(*steps: dict[str, Any]) -> Mutation:
    """Set the first input's preprocessing to ``steps``."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["inputs"][0]["preprocessing"] = list(steps)

    return mutate


def post(*steps: dict[str, Any]) -> Mutation:
    """Set the first output's postprocessing to ``steps``."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["outputs"][0]["postprocessing"] = list(steps)

    return mutate


def minimal_model() -> dict[str, Any]:
    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "minimal model",
        "inputs": [
            {
                "id": "raw",
                "axes": [
                    {"type": "channel", "channel_names": ["c0"]},
                    {"type": "space", "id": "x", "size": 16},
                ],
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": [
                    {"type": "channel", "channel_names": ["c0"]},
                    {"type": "space", "id": "x", "size": 16},
                ],
            }
        ],
        "weights": {"torchscript": {"source": "weights.pt", "pytorch_version": "2.1.0"}},
    }


def rich_model() -> dict[str, Any]:
    """Every axis kind, size kind, data kind, processing step and weights format."""
    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "rich model (all features)",
        "description": "uses every feature",
        "authors": [{"name": "A. Author", "affiliation": "Lab", "orcid": "0000-0001-2345-6789"}],
        "cite": [
            {"text": "Paper", "doi": "10.1234/abcd"},
            {"text": "Site", "url": "https://example.com"},
        ],
        "license": "CC-BY-4.0",
        "covers": ["cover.png"],
        "attachments": [{"source": "notes.txt", "sha256": SHA}],
        "maintainers": [{"github_user": "someone"}],
        "links": ["ilastik/ilastik"],
        "tags": ["segmentation"],
        "version": "1.2.0",
        "git_repo": "https://github.com/example/repo",
        "icon": "🦈",
        "id": "rich-model",
        "id_emoji": "🦈",
        "parent": {"id": "other-model", "version": "1.0"},
        "uploader": {"email": "a@example.com", "name": "A"},
        "documentation": "README.md",
        "packaged_by": [{"name": "Packager"}],
        "timestamp": "2024-01-02T03:04:05+00:00",
        "training_data": {"id": "some/dataset"},
        "run_mode": {"name": "deepimagej", "kwargs": {"tiling": True}},
        "inputs": [
            {
                "id": "raw",
                "description": "raw image",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["a", "b"]},
                    {"type": "time", "size": 5, "unit": "second", "scale": 2.0},
                    {
                        "type": "space",
                        "id": "y",
                        "size": {"min": 64, "step": 16},
                        "unit": "micrometer",
                    },
                    {
                        "type": "space",
                        "id": "x",
                        "size": {"tensor_id": "raw", "axis_id": "y"},
                        "unit": "micrometer",
                        "concatenable": True,
                    },
                ],
                "test_tensor": {"source": "in.npy", "sha256": SHA},
                "sample_tensor": {"source": "in.tif"},
                "data": [{"type": "uint16", "range": [0, 65535]}, {"type": "uint16"}],
                "pad": {"mode": "constant", "value": 1.5},
                "preprocessing": [
                    {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                    {"id": "binarize", "kwargs": {"threshold": 0.5}},
                    {"id": "binarize", "kwargs": {"threshold": [0.5, 0.2], "axis": "channel"}},
                    {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
                    {
                        "id": "clip",
                        "kwargs": {
                            "min_percentile": 1.0,
                            "max_percentile": 99.0,
                            "axes": ["x", "y"],
                        },
                    },
                    {"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": 1.0, "std": 2.0}},
                    {
                        "id": "fixed_zero_mean_unit_variance",
                        "kwargs": {"mean": [1.0, 2.0], "std": [1.0, 3.0], "axis": "channel"},
                    },
                    {"id": "scale_linear", "kwargs": {"gain": 2.0}},
                    {
                        "id": "scale_linear",
                        "kwargs": {"axis": "channel", "gain": [1.0, 2.0], "offset": [0.0, 1.0]},
                    },
                    {
                        "id": "scale_range",
                        "kwargs": {
                            "axes": ["x", "y"],
                            "min_percentile": 1.0,
                            "max_percentile": 99.8,
                        },
                    },
                    {"id": "sigmoid"},
                    {"id": "softmax", "kwargs": {"axis": "channel"}},
                    {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["x", "y"], "eps": 1e-5}},
                    {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                ],
            },
            {
                "id": "extra_in",
                "optional": True,
                "axes": [
                    {"type": "index", "size": 3},
                    {"type": "channel", "id": "features", "channel_names": ["f"]},
                ],
                "data": {"values": ["background", "cell"], "type": "uint8"},
            },
        ],
        "outputs": [
            {
                "id": "seg",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["p"]},
                    {
                        "type": "time",
                        "size": {"tensor_id": "raw", "axis_id": "time"},
                        "unit": "second",
                        "scale": 2.0,
                    },
                    {
                        "type": "space",
                        "id": "y",
                        "size": {"tensor_id": "raw", "axis_id": "y"},
                        "halo": 8,
                        "unit": "micrometer",
                    },
                    {
                        "type": "space",
                        "id": "x",
                        "size": {"tensor_id": "raw", "axis_id": "y", "offset": -2},
                        "unit": "micrometer",
                    },
                ],
                "test_tensor": {"source": "out.npy"},
                "data": {"type": "float32", "range": [0.0, 1.0]},
                "postprocessing": [
                    {
                        "id": "scale_mean_variance",
                        "kwargs": {"reference_tensor": "raw", "axes": ["x", "y"]},
                    },
                    {"id": "scale_range", "kwargs": {"reference_tensor": "raw"}},
                    {"id": "custom", "source": "post.py", "callable": "Post", "kwargs": {"k": 1}},
                ],
            },
            {
                "id": "objects",
                "axes": [
                    {"type": "index", "size": {"min": 1, "max": 100}},
                    {"type": "index", "id": "coords", "size": 4},
                ],
                "postprocessing": [
                    {
                        "id": "stardist_postprocessing",
                        "kwargs": {
                            "prob_threshold": 0.5,
                            "nms_threshold": 0.4,
                            "n_rays": 32,
                            "grid": [2, 2],
                            "b": [[2, 2], [1, 1]],
                        },
                    },
                    {"id": "binarize", "kwargs": {"threshold": 0.5}},
                ],
            },
        ],
        "weights": {
            "pytorch_state_dict": {
                "source": "weights.pth",
                "sha256": SHA,
                "authors": [{"name": "W. Author"}],
                "architecture": {
                    "source": "model.py",
                    "sha256": SHA,
                    "callable": "UNet",
                    "kwargs": {"depth": 3},
                },
                "pytorch_version": "2.1.0",
                "dependencies": {"source": "environment.yaml"},
                "strict": False,
            },
            "keras_v3": {
                "source": "model.keras",
                "parent": "keras_hdf5",
                "keras_version": "3.5.0",
                "backend": ["tensorflow", "2.16.1"],
            },
            "torchscript": {
                "source": "weights.pt",
                "parent": "pytorch_state_dict",
                "pytorch_version": "2.1.0",
            },
            "onnx": {
                "source": "weights.onnx",
                "parent": "pytorch_state_dict",
                "opset_version": 17,
                "external_data": {"source": "weights.onnx.data"},
                "comment": "converted",
            },
            "tensorflow_saved_model_bundle": {
                "source": "tf.zip",
                "parent": "keras_hdf5",
                "tensorflow_version": "2.15",
            },
            "keras_hdf5": {
                "source": "w.h5",
                "parent": "pytorch_state_dict",
                "tensorflow_version": "2.15",
            },
            "tensorflow_js": {
                "source": "tfjs.zip",
                "parent": "keras_hdf5",
                "tensorflow_version": "2.15",
            },
        },
        "config": {
            "bioimageio": {
                "reproducibility_tolerance": [
                    {
                        "relative_tolerance": 0.001,
                        "absolute_tolerance": 0.0001,
                        "output_ids": ["seg"],
                        "weights_formats": ["onnx"],
                    }
                ],
                "architecture_type": "unet",
            },
            "deepimagej": {"x": 1},
            "stardist": {"name": "2D_versatile", "thresholds": [0.5, 0.4]},
        },
    }


def library_architecture() -> dict[str, Any]:
    return {"import_from": "pkg.models", "callable": "UNet", "kwargs": {"n": 1}}
