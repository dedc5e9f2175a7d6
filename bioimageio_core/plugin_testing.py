"""Test helpers for plugin authors: tiny 0.5 descriptions, adapter requests and plugin checks.

A backend plugin's tests typically write a small model to a temporary folder, describe it, and
run it through the plugin's ``create_adapter``::

    from bioimageio_core import plugin_testing as pt

    raw = pt.model_description(
        tmp_path,
        inputs=[pt.TensorSpec.from_array("raw", "bcyx", x)],
        outputs=[pt.TensorSpec.from_array("out", "bcyx", y)],
        weights={"onnx": pt.weights_entry(tmp_path, "model.onnx", opset_version=17)},
    )
    request = pt.make_request(pt.build_model(raw, tmp_path), "onnx", devices=("cpu",))

    specs = pt.registered_weight_formats(my_plugin_module)
    for spec in specs:
        pt.check_weight_format_spec(spec, framework_modules=("onnxruntime",))
    pt.assert_import_is_light("my_package.plugin", ("onnxruntime",))

Importing this module imports no deep-learning framework and no pytest.
"""

from __future__ import annotations

import importlib.metadata
import keyword
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np

from bioimageio_core import hookspecs
from bioimageio_core.adapters import AdapterRequest, FileOpener
from bioimageio_core.settings import Settings
from bioimageio_core.sources import Root, sha256_of_file
from bioimageio_core.sources import as_root as sources_as_root
from bioimageio_core.spec import ModelDescr, SpecExtensions, build_description

__all__ = [
    "InvalidTestDescription",
    "ListRegister",
    "TensorSpec",
    "assert_import_is_light",
    "as_root",
    "axes",
    "build_model",
    "check_entry_point",
    "check_weight_format_spec",
    "checked_weight_formats",
    "describe_arrays",
    "make_request",
    "model_description",
    "registered_weight_formats",
    "serve_folder",
    "sha256_of",
    "weights_entry",
]

FORMAT_VERSION = "0.5.4"
"""The format version of the descriptions written here."""

_SPACE = {"z", "y", "x"}


class InvalidTestDescription(AssertionError):
    """A test description did not build; ``issues`` holds what was wrong (as strings)."""

    def __init__(self, issues: Sequence[str]) -> None:
        super().__init__("invalid test description:\n" + "\n".join(f"  {i}" for i in issues))
        self.issues = tuple(issues)


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file's bytes (:func:`bioimageio_core.sources.sha256_of_file`)."""
    return sha256_of_file(path)


def axes(
    letters: str, shape: Sequence[int | None], *, batch_size: int | None = None
) -> list[dict[str, Any]]:
    """Raw 0.5 axes for axis letters and sizes, e.g. ``axes("byxc", array.shape)``.

    Letters: ``b`` batch (size ``batch_size``, free when None; the shape entry is ignored),
    ``c`` channel (names ``c0``, ``c1``, …), ``i`` index, ``t`` time, ``z``/``y``/``x`` space.
    A size of None is written as a free size (``{"min": 1, "step": 1}``; inputs only, outputs
    need a fixed size or a size reference).
    """
    if len(letters) != len(shape):
        raise ValueError(f"axes {letters!r} do not fit shape {tuple(shape)}")
    result: list[dict[str, Any]] = []
    for letter, size in zip(letters, shape, strict=True):
        free: int | dict[str, int] = {"min": 1, "step": 1} if size is None else int(size)
        if letter == "b":
            axis: dict[str, Any] = {"type": "batch"}
            if batch_size is not None:
                axis["size"] = batch_size
        elif letter == "c":
            if size is None:
                raise ValueError("a channel axis needs a size (the number of channels)")
            axis = {"type": "channel", "channel_names": [f"c{i}" for i in range(int(size))]}
        elif letter == "i":
            axis = {"type": "index", "size": free}
        elif letter == "t":
            axis = {"type": "time", "id": "t", "size": free}
        elif letter in _SPACE:
            axis = {"type": "space", "id": letter, "size": free}
        else:
            raise ValueError(
                f"unknown axis letter {letter!r} in {letters!r} (use b, c, i, t, z, y, x)"
            )
        result.append(axis)
    return result


@attrs.frozen
class TensorSpec:
    """One input or output tensor of a test model.

    ``axes`` are raw 0.5 axis dicts (see :func:`axes`); ``test_tensor`` is written as ``.npy``
    next to the description when given; ``dtype`` defaults to the test tensor's dtype, else
    ``float32``.
    """

    id: str
    axes: Sequence[Mapping[str, Any]]
    test_tensor: np.ndarray[Any, Any] | None = None
    dtype: str | None = None

    @classmethod
    def from_array(
        cls, id: str, letters: str, array: np.ndarray[Any, Any], **kwargs: Any
    ) -> TensorSpec:
        """A tensor whose axes (by letter, see :func:`axes`) and test tensor come from ``array``."""
        return cls(id, axes(letters, array.shape, **kwargs), array)

    def raw(self, folder: Path, file_name: str) -> dict[str, Any]:
        """The raw tensor description; writes the test tensor to ``folder / file_name``."""
        dtype = self.dtype
        if dtype is None:
            dtype = "float32" if self.test_tensor is None else str(self.test_tensor.dtype)
        entry: dict[str, Any] = {
            "id": self.id,
            "axes": [dict(a) for a in self.axes],
            "data": {"type": dtype},
        }
        if self.test_tensor is not None:
            np.save(folder / file_name, self.test_tensor)
            entry["test_tensor"] = {"source": file_name, "sha256": sha256_of(folder / file_name)}
        return entry


def weights_entry(root: Path, source: str, **fields: Any) -> dict[str, Any]:
    """A raw weights entry for the file ``root / source``: its source, sha256 and ``fields``."""
    return {"source": source, "sha256": sha256_of(root / source), **fields}


def model_description(
    root: Path,
    inputs: Iterable[TensorSpec],
    outputs: Iterable[TensorSpec],
    weights: Mapping[str, Mapping[str, Any]],
    **fields: Any,
) -> dict[str, Any]:
    """A minimal valid raw 0.5 model description (a dict, as read from YAML).

    Test tensors are written into ``root`` as ``in_<id>.npy`` / ``out_<id>.npy``. ``fields``
    add or replace top-level fields (``name``, ``documentation``, ``config`` …).
    """
    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": "tiny plugin test model",
        "description": "a tiny model written by a plugin's tests",
        "authors": [{"name": "test"}],
        "cite": [{"text": "test", "doi": "10.1000/test"}],
        "license": "MIT",
        "inputs": [t.raw(root, f"in_{t.id}.npy") for t in inputs],
        "outputs": [t.raw(root, f"out_{t.id}.npy") for t in outputs],
        "weights": {name: dict(entry) for name, entry in weights.items()},
        **fields,
    }


def describe_arrays(
    root: Path,
    inputs: Mapping[str, np.ndarray[Any, Any]],
    outputs: Mapping[str, np.ndarray[Any, Any]],
    weights: Mapping[str, Mapping[str, Any]],
    *,
    letters: str,
    **fields: Any,
) -> dict[str, Any]:
    """:func:`model_description` for test arrays by tensor id that share the axes ``letters``.

    E.g. ``describe_arrays(root, {"raw": x}, {"out": y}, weights, letters="byxc")``.
    """
    return model_description(
        root,
        [TensorSpec.from_array(tid, letters, array) for tid, array in inputs.items()],
        [TensorSpec.from_array(tid, letters, array) for tid, array in outputs.items()],
        weights,
        **fields,
    )


def build_model(
    raw: Mapping[str, Any],
    root: object,
    *,
    extensions: SpecExtensions | None = None,
    allow_warnings: bool = True,
) -> ModelDescr:
    """The :class:`ModelDescr` of ``raw`` (built without IO) with ``root`` set.

    ``root`` is what relative references resolve against (a folder ``Path``, a
    :data:`~bioimageio_core.sources.Root`, or a URL base). ``extensions`` makes plugin-defined
    weight formats known. Raises :class:`InvalidTestDescription` listing the issues when the
    description is invalid (or has warnings, unless ``allow_warnings``).
    """
    result = build_description(raw, extensions=extensions)
    issues = result.issues if not allow_warnings else result.errors
    if not isinstance(result.descr, ModelDescr) or issues:
        raise InvalidTestDescription([str(i) for i in result.issues] or ["not a model"])
    return attrs.evolve(result.descr, root=root)


def as_root(root: object) -> Root:
    """The :data:`~bioimageio_core.sources.Root` for a model's ``root`` (Path, URL, or Root)."""
    return sources_as_root(root)


def make_request(
    model: ModelDescr,
    weights_format: str,
    devices: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    open_file: FileOpener | None = None,
) -> AdapterRequest[Any]:
    """An :class:`AdapterRequest` for ``model`` and one of its weight formats.

    Files are opened relative to ``model.root`` through :func:`bioimageio_core.sources.open_file`
    (sha256 checked) unless ``open_file`` is given; ``settings`` default to the current ones.
    """
    return AdapterRequest.for_model(
        model, weights_format, devices=devices, settings=settings, open_file=open_file
    )


@attrs.define
class ListRegister:
    """A register that keeps what a hook adds, in order (for hooks taking ``register``)."""

    specs: list[Any] = attrs.field(factory=list)

    def add(self, spec: Any) -> None:
        self.specs.append(spec)


def registered_weight_formats(plugin: ModuleType | object) -> list[hookspecs.WeightFormatSpec[Any]]:
    """The weight formats ``plugin`` registers through ``bioimageio_weight_formats``.

    The plugin is registered with a fresh pluggy manager; ``check_pending`` fails for a hook
    implementation that matches no hook specification (a misspelt name).
    """
    import pluggy

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    register = ListRegister()
    manager.hook.bioimageio_weight_formats(register=register)
    return list(register.specs)


def checked_weight_formats(
    plugin: ModuleType | object, *, framework_modules: Collection[str] = ()
) -> dict[str, hookspecs.WeightFormatSpec[Any]]:
    """:func:`registered_weight_formats` by name, each checked by :func:`check_weight_format_spec`."""
    specs = registered_weight_formats(plugin)
    for spec in specs:
        check_weight_format_spec(spec, framework_modules=framework_modules)
    by_name = {spec.name: spec for spec in specs}
    if len(by_name) != len(specs):
        raise AssertionError(f"a weight format is registered twice: {[s.name for s in specs]}")
    return by_name


def check_entry_point(distribution: str, name: str, module: str) -> object:
    """Assert that the installed ``distribution`` declares exactly the entry point
    ``name = module`` in group ``bioimageio_core``; return what it loads.

    Calls ``pytest.skip`` when the distribution is not installed (tests run from a source tree).
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        import pytest

        pytest.skip(f"{distribution} is not installed (run the tests of an installed plugin)")
    points = [ep for ep in dist.entry_points if ep.group == hookspecs.PROJECT_NAME]
    found = [(ep.name, ep.value) for ep in points]
    if found != [(name, module)]:
        raise AssertionError(
            f"{distribution} declares entry points {found} in group {hookspecs.PROJECT_NAME!r}; "
            f"expected [{(name, module)!r}]"
        )
    return points[0].load()


def check_weight_format_spec(
    spec: hookspecs.WeightFormatSpec[Any], *, framework_modules: Collection[str] = ()
) -> None:
    """Check that a registered :class:`~bioimageio_core.hookspecs.WeightFormatSpec` is well formed.

    The name is a non-empty identifier, the entry class is an attrs class, ``create_adapter`` and
    ``is_available`` are callable, ``is_available()`` returns None or a non-empty str, and calling
    it imports none of ``framework_modules`` that were not imported before. Raises
    ``AssertionError`` listing every problem.
    """
    problems: list[str] = []
    if not (
        isinstance(spec.name, str) and spec.name.isidentifier() and not keyword.iskeyword(spec.name)
    ):
        problems.append(f"name must be an identifier such as 'onnx' (got {spec.name!r})")
    if not (isinstance(spec.entry_class, type) and attrs.has(spec.entry_class)):
        problems.append(f"entry_class must be an attrs class (got {spec.entry_class!r})")
    if not callable(spec.create_adapter):
        problems.append(f"create_adapter must be callable (got {spec.create_adapter!r})")
    if not isinstance(spec.priority, int):
        problems.append(f"priority must be an int (got {spec.priority!r})")
    if callable(spec.is_available):
        before = _imported(framework_modules)
        reason = spec.is_available()
        if not (reason is None or (isinstance(reason, str) and reason)):
            problems.append(f"is_available() must return None or a reason (got {reason!r})")
        newly = sorted(_imported(framework_modules) - before)
        if newly:
            problems.append(f"is_available() imported {newly}; check with importlib.util.find_spec")
    else:
        problems.append(f"is_available must be callable (got {spec.is_available!r})")
    if problems:
        raise AssertionError(f"weight format {spec.name!r}: " + "; ".join(problems))


def _imported(modules: Collection[str]) -> set[str]:
    return {
        name for name in sys.modules if any(name == m or name.startswith(m + ".") for m in modules)
    }


def assert_import_is_light(
    module: str,
    forbidden: Iterable[str],
    *,
    call: str | None = None,
    path: Sequence[Path] = (),
    timeout: float = 120,
) -> None:
    """Assert that importing ``module`` in a fresh interpreter imports none of ``forbidden``.

    ``call`` names a function of ``module`` called (without arguments) after the import, e.g. the
    plugin's availability check. ``path`` entries are put first on the subprocess' ``sys.path``
    (before this interpreter's own), e.g. a plugin's source folder when it is not installed.
    Submodules count: forbidding ``"torch"`` also forbids ``"torch.nn"``.
    """
    names = sorted(set(forbidden))
    code = textwrap.dedent(
        f"""
        import importlib, sys
        module = importlib.import_module({module!r})
        call = {call!r}
        if call is not None:
            getattr(module, call)()
        names = {names!r}
        loaded = sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names))
        print(",".join(loaded))
        """
    )
    search_path = os.pathsep.join([*(str(p) for p in path), *sys.path])
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": search_path},
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"importing {module} failed:\n{result.stderr}")
    loaded = result.stdout.strip()
    if loaded:
        raise AssertionError(f"importing {module} imported {loaded.split(',')}")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 while the ``with`` block runs; yields the base URL.

    For tests of what a plugin does with a model opened from a URL (for instance that it refuses
    to run code that came with it unless the user allowed remote code)::

        with pt.serve_folder(model_folder) as base_url:
            bioimageio_core.predict(model=base_url + "rdf.yaml", inputs=x)
    """
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
