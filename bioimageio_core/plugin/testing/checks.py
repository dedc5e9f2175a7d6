"""Checks of a plugin module: its registrations, its entry point, a light import."""

from __future__ import annotations

import contextlib
import importlib.metadata
import keyword
import os
import subprocess
import sys
import textwrap
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from bioimageio_core import hookspecs, plugins

__all__ = [
    "ListRegister",
    "assert_import_is_light",
    "check_entry_point",
    "check_weight_format_spec",
    "checked_weight_formats",
    "only_plugins",
    "registered_converters",
    "registered_weight_formats",
]


@attrs.define
class ListRegister:
    """A register that keeps what a hook adds, in order (for hooks taking ``register``)."""

    specs: list[Any] = attrs.field(factory=list)

    def add(self, spec: Any) -> None:
        self.specs.append(spec)


def _registered(plugin: ModuleType | object, hook: str) -> list[Any]:
    """What ``plugin`` adds to the register of ``hook``, registered with a fresh pluggy manager
    (``check_pending`` fails for a hook implementation that matches no hook specification)."""
    import pluggy

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    register = ListRegister()
    getattr(manager.hook, hook)(register=register)
    return list(register.specs)


def registered_weight_formats(plugin: ModuleType | object) -> list[hookspecs.WeightFormatSpec[Any]]:
    """The weight formats ``plugin`` registers through ``bioimageio_weight_formats``."""
    return _registered(plugin, "bioimageio_weight_formats")


def registered_converters(plugin: ModuleType | object) -> dict[tuple[str, str], hookspecs.ConverterSpec]:
    """The converters ``plugin`` registers through ``bioimageio_weight_converters``, by
    ``(source_format, target_format)``."""
    specs: list[hookspecs.ConverterSpec] = _registered(plugin, "bioimageio_weight_converters")
    return {(s.source_format, s.target_format): s for s in specs}


@contextlib.contextmanager
def only_plugins(plugins_by_name: Mapping[str, ModuleType | object]) -> Iterator[plugins.PluginRegistry]:
    """Within the block the core uses a registry of only these plugins (by name; no entry point
    is loaded); afterwards the registry is built afresh."""
    registry = plugins.create_manager(extra_plugins=plugins_by_name, entry_points=[])
    original = plugins.get_registry
    plugins.get_registry = lambda settings=None: registry
    try:
        yield registry
    finally:
        plugins.get_registry = original
        plugins.reset()


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
