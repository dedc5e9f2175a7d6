"""``BackendConformance``: the end-to-end battery every weight-format backend's tests subclass.

A backend supplies small models in its format (:meth:`BackendConformance.build`) and a way to run
them with its framework directly (:meth:`BackendConformance.run_directly`); the battery writes
each as a 0.5 and a 0.4 description and checks, through the installed plugin and the
``bioimageio-run`` command line, what a user relies on.
"""

from __future__ import annotations

import importlib.metadata
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import attrs
import numpy as np
import pytest
import yaml

from bioimageio_core import plugins
from bioimageio_core.errors import PluginError
from bioimageio_core.hookspecs import PROJECT_NAME as ENTRY_POINT_GROUP
from bioimageio_core.plugin.testing import cli
from bioimageio_core.plugin.testing.checks import (
    assert_import_is_light,
    check_entry_point,
    checked_weight_formats,
)
from bioimageio_core.plugin.testing.models import (
    FORMAT_VERSION,
    FORMAT_VERSION_04,
    SPACE,
    ModelDef,
    Param,
    TensorDef,
    Version,
    build_model,
    description_path,
    make_request,
    write_model,
)

__all__ = ["Arrays", "BackendConformance", "Built"]

N = TypeVar("N")
"""What :meth:`BackendConformance.build` returns next to the definition for the direct run (a
module, a session, a file path …)."""
Array = np.ndarray[Any, Any]
Arrays = Mapping[str, Array]
"""Arrays by tensor id (what :meth:`BackendConformance.run_directly` takes and returns)."""
VERSIONS: tuple[Version, ...] = ("0.5", "0.4")


@attrs.frozen(eq=False)
class Built(Generic[N]):
    """A model written into ``folder`` (weights, test tensors, 0.5 and 0.4 descriptions)."""

    folder: Path
    model: ModelDef
    network: N


class BackendConformance(Generic[N]):
    """Subclass it (as ``TestMyBackend``) in a backend distribution's tests to run the battery.

    Set the class attributes that say what the plugin is, and implement :meth:`build` and
    :meth:`run_directly`. :meth:`build` is asked for the models named in :attr:`models`; each
    is described with :class:`~bioimageio_core.plugin.testing.ModelDef`, whose
    :class:`~bioimageio_core.plugin.testing.TensorDef`\\ s use the letters of the backend's
    layout (``bcyx``, ``byxc`` …):

    ``"tiled"``
        One input sized :class:`~bioimageio_core.plugin.testing.Param` (e.g. 64 + n·16) and one
        output of the input's size (``Ref(input)``) with a halo of at least
        :attr:`tiled_radius` (its receptive field radius): predicted whole, in blocks, in
        batches, and with too small a halo.
    ``"multi"``
        Two inputs (the second ``Ref``\\ s the first) and two outputs: several tensors matched
        by id, a wrong test output per output, ``--axes`` per input.
    ``"scaled"``
        An output of a scaled size (``Ref(input, 0.5)``) with a halo: blockwise prediction of
        a model that changes the size.

    :func:`~bioimageio_core.plugin.testing.tiled_model`, ``multi_model`` and ``scaled_model``
    describe such models (tensor ids, sizes and halos) from a backend's arrays and weights.

    Tests (each parametrized where it says so): the plugin module registers
    :attr:`weights_formats` well-formed and imports no framework; its entry point (when the
    distribution is installed); ``bioimageio-run test`` passes every model in 0.5 and 0.4
    (parameterized, referenced and fixed sizes) and fails exactly on a wrong test output, per
    weight format; ``predict`` of a large image whole equals the framework run directly, and
    blockwise (batch sizes 1 and 4) equals whole; blockwise equals whole for the other models
    and for a batch of three; ``block-artifacts`` finds artifacts exactly when the halo is too
    small; ``--axes`` with several inputs; the registered adapter reproduces the test outputs,
    unloads idempotently and refuses to run afterwards.
    """

    distribution: ClassVar[str]
    """Distribution name, e.g. ``"bioimageio-run-onnx"``; its one entry point in the group
    ``bioimageio_core`` names the plugin module (the battery needs the distribution installed)."""
    framework_modules: ClassVar[tuple[str, ...]] = ()
    """Modules that importing the plugin and asking availability must not import."""
    weights_formats: ClassVar[tuple[str, ...]]
    """The formats every built model provides (each is tested)."""
    models: ClassVar[tuple[str, ...]] = ("tiled", "multi", "scaled")
    """The models this backend builds (a backend that cannot express one leaves it out)."""
    tiled_radius: ClassVar[int] = 2
    """Receptive field radius of the ``"tiled"`` model (0: a pixel-wise model)."""
    large_size: ClassVar[int] = 2048
    """Height and width of the large image predicted whole and blockwise."""
    large_blocksize: ClassVar[int] = 28
    """Blocksize parameter of its blockwise prediction (block = min + n·step)."""
    large_weights_format: ClassVar[str | None] = None
    """Weight format the large image is predicted with (None: the best usable one)."""
    atol: ClassVar[float] = 1e-5
    """Absolute tolerance of every comparison."""

    # ---- supplied by the backend ---------------------------------------------------------------

    def build(self, name: str, folder: Path) -> tuple[ModelDef, N]:
        """Write the weights of model ``name`` into ``folder``; return its definition (test
        arrays computed with the framework) and what :meth:`run_directly` needs."""
        raise NotImplementedError

    def run_directly(self, network: N, inputs: Arrays) -> Arrays:
        """Outputs by tensor id of ``network`` run by the framework itself on ``inputs`` (by
        tensor id, axes as the model's definition has them)."""
        raise NotImplementedError

    # ---- parametrization and fixtures ----------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        names = metafunc.fixturenames
        if "version" in names:
            metafunc.parametrize("version", VERSIONS)
        if "weights_format" in names:
            metafunc.parametrize("weights_format", self.weights_formats)
        if "model_name" in names:
            metafunc.parametrize("model_name", self.models)
        if "other_model" in names:
            metafunc.parametrize("other_model", [m for m in self.models if m != "tiled"])

    @pytest.fixture(autouse=True)
    def _own_cache(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built[N]]:
        """Every model, with its weights and both descriptions in a folder of its own."""
        backend = cls()
        models = {}
        for name in cls.models:
            folder = tmp_path_factory.mktemp(name)
            model, network = backend.build(name, folder)
            for version in VERSIONS:
                write_model(folder, model, version)
            models[name] = Built(folder, model, network)
        return models

    @pytest.fixture(scope="class")
    @classmethod
    def large(
        cls, built: dict[str, Built[N]], tmp_path_factory: pytest.TempPathFactory
    ) -> cli.LargePrediction:
        """A large input predicted whole and blockwise (batch sizes 1 and 4) by the CLI."""
        tiled = built["tiled"]
        (raw,) = tiled.model.inputs
        size = _valid(raw.size, cls.large_size)
        image = _random(raw, {a: size for a in SPACE}, batch=1, seed=7)
        whole, blockwise = cli.predict_whole_and_tiled(
            tiled.folder / "rdf.yaml",
            image,
            tmp_path_factory.mktemp("large"),
            axes=raw.axes,
            blocksize=cls.large_blocksize,
            weights_format=cls.large_weights_format,
        )
        (out,) = tiled.model.outputs
        direct = cls().run_directly(tiled.network, {raw.id: image})[out.id]
        return cli.LargePrediction(whole, np.asarray(direct), blockwise)

    # ---- the plugin ----------------------------------------------------------------------------

    def entry_point(self) -> importlib.metadata.EntryPoint:
        """The one entry point of :attr:`distribution` in the group ``bioimageio_core``."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{self.distribution} is not installed (the battery tests what is)")
        points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        assert len(points) == 1, f"{self.distribution} declares entry points {points}"
        return points[0]

    def test_plugin_registers_its_formats_well_formed(self) -> None:
        module = self.entry_point().load()
        specs = checked_weight_formats(module, framework_modules=self.framework_modules)
        assert set(self.weights_formats) <= set(specs), sorted(specs)

    def test_plugin_import_is_light(self) -> None:
        assert_import_is_light(self.entry_point().value, self.framework_modules)

    def test_entry_point_and_what_the_core_sees(self) -> None:
        point = self.entry_point()
        loaded = check_entry_point(self.distribution, point.name, point.value)
        (info,) = [i for i in plugins.plugin_infos() if i.name == point.name]
        assert (info.status, info.distribution) == ("loaded", self.distribution), info.error
        assert set(self.weights_formats) <= set(info.weight_formats)
        assert loaded is not None
        registry = plugins.get_registry()
        for name in self.weights_formats:
            spec = registry.weight_formats.specs[name]
            assert registry.distribution_of("weight_format", name) == self.distribution
            assert plugins.unavailable_reason(spec) is None
            assert self.distribution in spec.install_hint, (name, spec.install_hint)

    # ---- bioimageio-run test -------------------------------------------------------------------

    def test_cli_test_passes(
        self, built: dict[str, Built[N]], model_name: str, version: Version
    ) -> None:
        b = built[model_name]
        exit_code, summary = cli.run_test(description_path(b.folder, version))
        cli.assert_passed(exit_code, summary, self.weights_formats, len(b.model.outputs))
        assert summary["format_version"] == (FORMAT_VERSION if version == "0.5" else FORMAT_VERSION_04)
        assert cli.warnings_of(summary) == []

    def test_cli_test_passes_with_fixed_sizes(
        self, built: dict[str, Built[N]], tmp_path: Path, version: Version
    ) -> None:
        """The tiled model with the input fixed at its test tensor's size (the output refers
        to it)."""
        b = built["tiled"]
        fixed = attrs.evolve(b.model, inputs=tuple(attrs.evolve(t, size=None) for t in b.model.inputs))
        path = write_model(_copy(b.folder, tmp_path / "model"), fixed, version)
        exit_code, summary = cli.run_test(path)
        cli.assert_passed(exit_code, summary, self.weights_formats, len(fixed.outputs))
        raw = yaml.safe_load(path.read_text())
        sizes = [a.get("size") for t in raw["inputs"] for a in t["axes"]] if version == "0.5" else []
        assert all(s is None or isinstance(s, int) for s in sizes), sizes

    def test_cli_test_fails_on_a_wrong_test_output(
        self,
        built: dict[str, Built[N]],
        tmp_path: Path,
        version: Version,
        weights_format: str,
    ) -> None:
        """Each output's test tensor off by one fails exactly that output's reproduction."""
        b = built["multi" if "multi" in self.models else "tiled"]
        folder = _copy(b.folder, tmp_path / "model")
        for out in b.model.outputs:
            path = write_model(folder, b.model, version, wrong_output=out.id)
            exit_code, summary = cli.run_test(path, "--weights-format", weights_format)
            cli.assert_failed_reproduction(exit_code, summary, weights_format, out.id)

    # ---- predict: whole and blockwise ----------------------------------------------------------

    def test_whole_image_prediction_is_the_direct_run(
        self, built: dict[str, Built[N]], large: cli.LargePrediction
    ) -> None:
        (out,) = built["tiled"].model.outputs
        (raw,) = built["tiled"].model.inputs
        size = _valid(raw.size, self.large_size)
        expected = _shape(out, {a: size for a in SPACE}, batch=1)
        assert large.whole.shape == large.direct.shape == expected
        np.testing.assert_allclose(large.whole, large.direct, rtol=self.atol, atol=self.atol)

    @pytest.mark.parametrize("batch_size", [1, 4])
    def test_blockwise_prediction_equals_whole_image(
        self, large: cli.LargePrediction, batch_size: int
    ) -> None:
        np.testing.assert_allclose(large.tiled[batch_size], large.whole, rtol=0, atol=self.atol)

    def test_batch_size_4_equals_batch_size_1(self, large: cli.LargePrediction) -> None:
        np.testing.assert_allclose(large.tiled[4], large.tiled[1], rtol=0, atol=self.atol)

    def test_blockwise_prediction_of_other_models_equals_whole_image(
        self, built: dict[str, Built[N]], tmp_path: Path, other_model: str, version: Version
    ) -> None:
        """Several inputs and outputs, scaled outputs: whole == direct, blockwise == whole."""
        b = built[other_model]
        if any(not set(SPACE) & set(t.axes) for t in b.model.outputs):
            pytest.skip(f"{other_model!r} has an output without space axes: it is not tiled")
        first = b.model.inputs[0]
        space = {a: _valid(first.size, n) for a, n in zip("yx", (400, 336), strict=True)}
        feed = {t.id: _random(t, space, batch=1, seed=11 + i) for i, t in enumerate(b.model.inputs)}
        for tid, array in feed.items():
            (tmp_path / tid).mkdir()
            np.save(tmp_path / tid / "image.npy", array)
        direct = self.run_directly(b.network, feed)

        def predict(label: str, *args: str) -> dict[str, Array]:
            result = cli.run_cli(
                "predict", description_path(b.folder, version),
                "--inputs", tmp_path / "{tensor_id}" / "image.npy",
                "--outputs", tmp_path / label / "{tensor_id}.npy", "--device", "cpu", "--quiet",
                *self._format_args(), *args,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            return {t.id: np.load(tmp_path / label / f"{t.id}.npy") for t in b.model.outputs}

        whole = predict("whole")
        for t in b.model.outputs:
            np.testing.assert_allclose(whole[t.id], direct[t.id], rtol=self.atol, atol=self.atol)
        # blocks of min + 2 * step pixels (halo included), four per forward call
        tiled = predict("tiled", "--blocksize", "2", "--batch-size", "4")
        for t in b.model.outputs:
            np.testing.assert_allclose(tiled[t.id], whole[t.id], rtol=0, atol=self.atol)

    def test_blockwise_prediction_of_a_batch_of_three(
        self, built: dict[str, Built[N]], tmp_path: Path, version: Version
    ) -> None:
        """Three images in one sample, predicted in blocks of the smallest size, four per call."""
        b = built["tiled"]
        (raw,) = b.model.inputs
        (out,) = b.model.outputs
        space = {"y": _valid(raw.size, 272), "x": _valid(raw.size, 208)}
        image = _random(raw, space, batch=3, seed=12)
        np.save(tmp_path / "image.npy", image)
        result = cli.run_cli(
            "predict", description_path(b.folder, version), "--inputs", tmp_path / "image.npy",
            "--outputs", tmp_path / "out.npy", "--device", "cpu", "--quiet",
            "--blocksize", "0", "--batch-size", "4", *self._format_args(),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        expected = self.run_directly(b.network, {raw.id: image})[out.id]
        np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=0, atol=self.atol)

    @pytest.mark.parametrize("halo", ["described", "none"])
    def test_block_artifacts_show_a_too_small_halo(
        self, built: dict[str, Built[N]], tmp_path: Path, halo: str
    ) -> None:
        """Described without a halo, blockwise prediction of the tiled model differs from
        whole-image prediction within its receptive field radius of block borders, and
        ``block-artifacts`` says so; with the described halo it does not."""
        b = built["tiled"]
        (raw,) = b.model.inputs
        (out,) = b.model.outputs
        model = b.model if halo == "described" else attrs.evolve(
            b.model, outputs=(attrs.evolve(out, halo=0),)
        )
        rdf = write_model(_copy(b.folder, tmp_path / "model"), model, "0.5")
        space = {"y": _valid(raw.size, 256), "x": _valid(raw.size, 192)}
        np.save(tmp_path / "image.npy", _random(raw, space, batch=1, seed=13))
        result = cli.run_cli(
            "block-artifacts", rdf, "--inputs", tmp_path / "image.npy",
            "--outputs", tmp_path / "diff", "--blocksize", "0", "--fail-above", str(self.atol),
            "--device", "cpu", "--quiet", *self._format_args(),
        )  # fmt: skip
        (diff_file,) = (tmp_path / "diff").iterdir()
        diff = np.load(diff_file)
        assert diff.shape == _shape(out, space, batch=1)
        if halo == "described" or self.tiled_radius == 0:
            assert result.exit_code == 0, result.output
            assert diff.max() <= self.atol
            return
        assert result.exit_code == 1, result.output
        # blocks of the smallest input size: the artifacts lie within the receptive field
        # radius of block borders
        block = raw.size.min if isinstance(raw.size, Param) else space["y"]
        found = np.nonzero(diff > self.atol)
        ys, xs = found[out.axes.index("y")], found[out.axes.index("x")]
        assert ys.size > 0
        r = self.tiled_radius
        borders = [*range(r), *range(block - r, block)]
        near = np.isin(ys % block, borders) | np.isin(xs % block, borders)
        assert near.all()

    @pytest.mark.parametrize("per_input", [False, True])
    def test_predict_axes_option_with_several_inputs(
        self, built: dict[str, Built[N]], tmp_path: Path, per_input: bool
    ) -> None:
        """Arrays without a batch axis: ``--axes`` once for all inputs, or per input."""
        if "multi" not in self.models:
            pytest.skip("the backend builds no model with several inputs")
        b = built["multi"]
        letters = [t.axes.replace("b", "") for t in b.model.inputs]
        axes = (
            ",".join(f"{t.id}={a}" for t, a in zip(b.model.inputs, letters, strict=True))
            if per_input
            else letters[0]
        )
        for t in b.model.inputs:
            assert t.test is not None
            (tmp_path / t.id).mkdir()
            np.save(tmp_path / t.id / "image.npy", np.take(t.test, 0, axis=t.axes.index("b")))
        result = cli.run_cli(
            "predict", b.folder / "rdf.yaml", "--inputs", tmp_path / "{tensor_id}" / "image.npy",
            "--outputs", tmp_path / "out" / "{tensor_id}.npy", "--axes", axes, "--quiet",
            *self._format_args(),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        for t in b.model.outputs:
            np.testing.assert_allclose(
                np.load(tmp_path / "out" / f"{t.id}.npy"), t.test, atol=self.atol  # type: ignore[arg-type]
            )

    # ---- the adapter ---------------------------------------------------------------------------

    def test_registered_adapter_reproduces_and_unloads(
        self, built: dict[str, Built[N]], weights_format: str
    ) -> None:
        """The adapter the core gets from the registry: test outputs reproduced, ``unload``
        idempotent, no forward call after it."""
        b = built["tiled"]
        raw = yaml.safe_load((b.folder / "rdf.yaml").read_text())
        model = build_model(raw, b.folder, extensions=plugins.spec_extensions())
        spec = plugins.weight_formats()[weights_format]
        inputs = {t.id: t.test for t in b.model.inputs if t.test is not None}
        with spec.create_adapter(make_request(model, weights_format, ("cpu",))) as adapter:
            outputs = adapter.forward(inputs)
            assert list(outputs) == [t.id for t in b.model.outputs]
            for t in b.model.outputs:
                np.testing.assert_allclose(outputs[t.id], t.test, rtol=self.atol, atol=self.atol)  # type: ignore[arg-type]
        adapter.unload()  # a second time
        with pytest.raises(PluginError):
            adapter.forward(inputs)

    # ---- helpers -------------------------------------------------------------------------------

    def _format_args(self) -> tuple[str, ...]:
        return ("--weights-format", self.weights_formats[0])


def _valid(size: object, target: int) -> int:
    """The smallest size of a parameterized axis that is at least ``target`` (``target`` for
    other sizes)."""
    if not isinstance(size, Param):
        return target
    return size.min + max(0, math.ceil((target - size.min) / size.step)) * size.step


def _shape(t: TensorDef, space: Mapping[str, int], *, batch: int) -> tuple[int, ...]:
    """The shape of ``t`` for space sizes ``space`` (other axes as its definition has them)."""
    scale = getattr(t.size, "scale", 1.0)
    shape: list[int] = []
    for letter, size in zip(t.axes, t.sizes, strict=True):
        if letter == "b":
            shape.append(batch)
        elif letter in space:
            shape.append(int(space[letter] * scale))
        else:
            assert size is not None, (t.id, letter)
            shape.append(size)
    return tuple(shape)


def _random(t: TensorDef, space: Mapping[str, int], *, batch: int, seed: int) -> Array:
    """Normally distributed data of ``t``'s dtype and the shape :func:`_shape` gives."""
    data = np.random.default_rng(seed).standard_normal(_shape(t, space, batch=batch))
    return data.astype(t.data_type)


def _copy(folder: Path, target: Path) -> Path:
    """A copy of a built model's folder (weights and other files), to write descriptions into."""
    shutil.copytree(folder, target)
    return target
