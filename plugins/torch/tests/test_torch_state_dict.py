"""pytorch_state_dict adapter: architecture from a file or a library, strict weights loading."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio_run_torch.plugin import create_pytorch_state_dict_adapter
from bioimageio_run_torch.state_dict import PytorchStateDictAdapter
from torch_helpers import (
    NETS_FILE,
    Ref,
    TensorDef,
    file_architecture,
    make_request,
    model_rdf,
    run_eager,
    seeded,
    sha256_of,
    state_dict_model_rdf,
    state_dict_weights,
)

from bioimageio_core.plugin import HashMismatchError, PluginError, SourceError

FORMAT = "pytorch_state_dict"


def _tiny_conv_rdf(
    folder: Path,
    nets: ModuleType,
    *,
    architecture: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    batch: int = 2,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    module = seeded(nets.TinyConv, in_channels=2, out_channels=3)
    x = np.random.default_rng(0).standard_normal((batch, 2, 8, 8)).astype(np.float32)
    expected = run_eager(module, x).numpy()
    if architecture is None:
        architecture = file_architecture(
            folder / NETS_FILE, "TinyConv", in_channels=2, out_channels=3
        )
    return state_dict_model_rdf(folder, module, x, architecture, state), x, expected


def _architecture_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith("_bioimageio_architecture_")}


def test_architecture_from_file(nets: ModuleType, model_dir: Path) -> None:
    rdf, x, expected = _tiny_conv_rdf(model_dir, nets, batch=3)
    request = make_request(model_dir, rdf, FORMAT)
    before = _architecture_modules()
    with create_pytorch_state_dict_adapter(request) as adapter:
        assert isinstance(adapter, PytorchStateDictAdapter)
        result = adapter.forward({"raw": x})
    np.testing.assert_allclose(result["out"], expected, rtol=1e-6, atol=1e-6)
    assert result["out"].shape == (3, 3, 8, 8)
    # the architecture file was fetched with its sha256, and its module did not stay imported
    arch = rdf["weights"][FORMAT]["architecture"]
    assert (arch["source"], arch["sha256"]) in request.open_file.calls  # type: ignore[attr-defined]
    assert _architecture_modules() == before


def test_architecture_factory_function_with_kwargs(nets: ModuleType, model_dir: Path) -> None:
    architecture = file_architecture(
        model_dir / NETS_FILE, "make_tiny_conv", in_channels=2, out_channels=3
    )
    rdf, x, expected = _tiny_conv_rdf(model_dir, nets, architecture=architecture)
    with create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT)) as adapter:
        np.testing.assert_allclose(
            adapter.forward({"raw": x})["out"], expected, rtol=1e-6, atol=1e-6
        )


def test_architecture_from_library(
    nets: ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = model_dir / "installed_lib"
    library.mkdir()
    (library / "tiny_torch_library_nets.py").write_text((model_dir / NETS_FILE).read_text())
    monkeypatch.syspath_prepend(str(library))
    architecture = {
        "import_from": "tiny_torch_library_nets",
        "callable": "TinyConv",
        "kwargs": {"in_channels": 2, "out_channels": 3},
    }
    rdf, x, expected = _tiny_conv_rdf(model_dir, nets, architecture=architecture)
    with create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT)) as adapter:
        np.testing.assert_allclose(
            adapter.forward({"raw": x})["out"], expected, rtol=1e-6, atol=1e-6
        )
    sys.modules.pop("tiny_torch_library_nets", None)


def test_missing_library_module(nets: ModuleType, model_dir: Path) -> None:
    architecture = {
        "import_from": "no_such_package_for_tests.nets",
        "callable": "Net",
        "kwargs": {},
    }
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets, architecture=architecture)
    with pytest.raises(
        PluginError, match=r"'no_such_package_for_tests.nets' cannot be imported"
    ) as info:
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    assert "bioimageio-run-torch" in str(info.value)


def test_multi_input_multi_output(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.MultiInOut, seed=7)
    raw = np.random.default_rng(1).standard_normal((2, 2, 8, 8)).astype(np.float32)
    mask = np.random.default_rng(2).random((2, 1, 8, 8)).astype(np.float32)
    features, score = (t.numpy() for t in run_eager(module, raw, mask))
    rdf = model_rdf(
        model_dir,
        [TensorDef("raw", "bcyx", raw), TensorDef("mask", "bcyx", mask)],
        [
            TensorDef("features", "bcyx", features, Ref("raw")),
            TensorDef("score", "bc", score),
        ],
        {
            FORMAT: state_dict_weights(
                model_dir,
                module.state_dict(),
                file_architecture(model_dir / NETS_FILE, "MultiInOut"),
            )
        },
    )
    with create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT)) as adapter:
        result = adapter.forward({"mask": mask, "raw": raw})
    np.testing.assert_allclose(result["features"], features, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result["score"], score, rtol=1e-6, atol=1e-6)


def test_missing_and_unexpected_keys_are_listed(nets: ModuleType, model_dir: Path) -> None:
    state = dict(seeded(nets.TinyConv, in_channels=2, out_channels=3).state_dict())
    state["conv1.renamed_weight"] = state.pop("conv1.weight")
    state["extra.bias"] = torch.zeros(3)
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets, state=state)
    with pytest.raises(PluginError) as info:
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    text = str(info.value)
    assert "missing keys ['conv1.weight']" in text
    assert "unexpected keys ['conv1.renamed_weight', 'extra.bias']" in text
    assert "pytorch_state_dict weights 'weights.pth'" in text
    assert "bioimageio-run-torch" in text


def test_non_strict_loading_warns_and_runs(nets: ModuleType, model_dir: Path) -> None:
    module = seeded(nets.TinyConv, in_channels=2, out_channels=3)
    state = dict(module.state_dict())
    state["extra.bias"] = torch.zeros(3)  # unexpected
    bias_key = next(k for k in state if k.endswith(".bias") and k != "extra.bias")
    del state[bias_key]  # missing: keeps the architecture's initial value
    rdf, x, _ = _tiny_conv_rdf(model_dir, nets, state=state)
    with pytest.raises(PluginError, match="missing keys"):  # strict by default
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    rdf["weights"][FORMAT]["strict"] = False
    torch.manual_seed(0)  # the architecture's initial values, as seeded() makes them
    with pytest.warns(UserWarning) as record:
        adapter = create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    text = " ".join(str(w.message) for w in record)
    assert f"missing keys ['{bias_key}']" in text
    assert "unexpected keys ['extra.bias']" in text
    assert "weights.pytorch_state_dict.strict" in text
    # the loaded parameters are the file's; the missing one keeps its initial value
    expected_module = seeded(nets.TinyConv, in_channels=2, out_channels=3)
    partial = {k: v for k, v in state.items() if k != "extra.bias"}
    expected_module.load_state_dict(partial, strict=False)
    with adapter:
        result = adapter.forward({"raw": x})
    np.testing.assert_allclose(result["out"], run_eager(expected_module, x).numpy(), atol=1e-6)


def test_model_testing_reports_non_strict_loading_as_a_warning(
    nets: ModuleType, model_dir: Path
) -> None:
    import yaml

    from bioimageio_core import test_model

    state = dict(seeded(nets.TinyConv, in_channels=2, out_channels=3).state_dict())
    state["extra.bias"] = torch.zeros(3)
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets, state=state)
    (model_dir / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    failed = test_model(model_dir / "rdf.yaml", weights_format=FORMAT)
    assert failed.status == "valid-format"
    rdf["weights"][FORMAT]["strict"] = False
    (model_dir / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    summary = test_model(model_dir / "rdf.yaml", weights_format=FORMAT)
    assert summary.status == "passed", summary.format_text()
    load = next(d for d in summary.details if d.name == f"load {FORMAT} weights")
    assert "unexpected keys ['extra.bias']" in load.warnings[0].msg


def test_non_strict_loading_still_refuses_shape_mismatches(
    nets: ModuleType, model_dir: Path
) -> None:
    architecture = file_architecture(
        model_dir / NETS_FILE, "TinyConv", in_channels=1, out_channels=3
    )
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets, architecture=architecture)
    rdf["weights"][FORMAT]["strict"] = False
    with pytest.raises(PluginError, match=r"size mismatch"):
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param({"conv1.weight": Fraction(1, 3)}, r"weights_only=True", id="pickled object"),
        pytest.param(torch.zeros(3), r"holds a Tensor, not a state dict", id="not a state dict"),
    ],
)
def test_weights_file_content_is_checked(
    content: object, message: str, nets: ModuleType, model_dir: Path
) -> None:
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets)
    weights = model_dir / rdf["weights"][FORMAT]["source"]
    torch.save(content, weights)
    rdf["weights"][FORMAT]["sha256"] = sha256_of(weights)
    with pytest.raises(PluginError, match=message):
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))


def test_changed_architecture_file_fails_its_sha256(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets)
    with (model_dir / NETS_FILE).open("a") as file:
        file.write("\nprint('injected')\n")
    with pytest.raises(HashMismatchError, match=NETS_FILE) as info:
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    assert "(at $.weights.pytorch_state_dict.architecture.sha256)" in str(info.value)


def test_missing_weights_file_names_the_field(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets)
    (model_dir / rdf["weights"][FORMAT]["source"]).unlink()
    with pytest.raises(
        SourceError, match=r"weights.pth does not exist.*\$\.weights\.pytorch_state_dict\.source"
    ):
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))


@pytest.mark.parametrize(
    ("callable_name", "kwargs", "message"),
    [
        pytest.param(
            "TinyConv",
            {"in_channels": 1, "out_channels": 3},
            r"(?s)does not fit the architecture.*size mismatch for conv1\.weight",
            id="shape mismatch names the parameter",
        ),
        pytest.param(
            "UNet3000", {}, r"no callable 'UNet3000'.*'TinyConv'", id="unknown callable"
        ),
        pytest.param(
            "not_a_module",
            {},
            r"returned a int, not a torch.nn.Module",
            id="callable must return a module",
        ),
        pytest.param(
            "TinyConv",
            {"channels_in": 2},
            r"calling the architecture tiny_nets.py:TinyConv.*channels_in",
            id="bad kwargs name the architecture",
        ),
    ],
)
def test_architecture_that_does_not_fit_is_named(
    callable_name: str, kwargs: dict[str, Any], message: str, nets: ModuleType, model_dir: Path
) -> None:
    architecture = file_architecture(model_dir / NETS_FILE, callable_name, **kwargs)
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets, architecture=architecture)
    with pytest.raises(PluginError, match=message):
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))


def test_broken_architecture_file(nets: ModuleType, model_dir: Path) -> None:
    rdf, _, _ = _tiny_conv_rdf(model_dir, nets)
    broken = model_dir / "broken.py"
    broken.write_text("import a_package_that_is_not_installed_anywhere\n")
    rdf["weights"][FORMAT]["architecture"] = file_architecture(broken, "Net")
    before = _architecture_modules()
    with pytest.raises(
        PluginError, match=r"executing the architecture file failed: ModuleNotFoundError"
    ):
        create_pytorch_state_dict_adapter(make_request(model_dir, rdf, FORMAT))
    assert _architecture_modules() == before
