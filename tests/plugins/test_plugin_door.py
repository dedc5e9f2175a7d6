"""The backends and the example plugin reach the core through one door only.

Plugin code imports ``bioimageio_core.plugin``; plugin tests also its test kit
``bioimageio_core.plugin.testing`` and the public API a user has (``bioimageio_core.__all__``).
Everything an author needs is there, so nothing else may be imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import bioimageio_core
import bioimageio_core.plugin as door
import bioimageio_core.plugin.testing as kit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "minimal-plugin"
PLUGIN_CODE = sorted(
    [*ROOT.glob("plugins/*/bioimageio_run_*/**/*.py"), *EXAMPLE.glob("bioimageio_*/**/*.py")]
)
PLUGIN_TESTS = sorted(
    [*ROOT.glob("plugins/*/tests/**/*.py"), *EXAMPLE.glob("tests/**/*.py"), *EXAMPLE.glob("*.py")]
)
CODE_MODULES = {"bioimageio_core.plugin": set(door.__all__)}
TEST_MODULES = {
    **CODE_MODULES,
    "bioimageio_core.plugin.testing": set(kit.__all__),
    "bioimageio_core": set(bioimageio_core.__all__),
}


def core_imports(source: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` of every import of ``bioimageio_core`` in ``source`` (name None
    for ``import module``), including ``importlib.import_module("…")`` with a literal."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "bioimageio_core":
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "bioimageio_core":
                for alias in node.names:
                    yield node.lineno, node.module, alias.name
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).split(".")[0] == "bioimageio_core"
        ):
            yield node.lineno, str(node.args[0].value), None


def violations(source: str, allowed: dict[str, set[str]], *, bare: bool) -> list[str]:
    """Imports of ``source`` that are not names of an ``allowed`` module (``import module``
    only where ``bare`` allows it)."""
    found = []
    for line, module, name in core_imports(source):
        if module not in allowed:
            found.append(f"line {line}: {module}")
        elif name is None and not bare:
            found.append(f"line {line}: import {module}")
        elif name is not None and name not in allowed[module]:
            found.append(f"line {line}: {module}.{name}")
    return found


def test_the_scan_finds_other_doors() -> None:
    source = (
        "from bioimageio_core.errors import PluginError\n"
        "from bioimageio_core import plugins\n"
        "from bioimageio_core.plugin import PluginError, not_there\n"
        "import importlib\n"
        "def f():\n"
        "    from bioimageio_core.sources import open_file\n"
        "    return importlib.import_module('bioimageio_core.spec')\n"
    )
    assert violations(source, CODE_MODULES, bare=False) == [
        "line 1: bioimageio_core.errors",
        "line 2: bioimageio_core",
        "line 3: bioimageio_core.plugin.not_there",
        "line 6: bioimageio_core.sources",
        "line 7: bioimageio_core.spec",
    ]
    assert violations("from bioimageio_core import load_description\n", TEST_MODULES, bare=True) == []


def test_there_is_plugin_code_and_tests_to_scan() -> None:
    for name in ("torch", "onnx", "tensorflow", "keras"):
        assert any(f"plugins/{name}/bioimageio_run_{name}/" in str(p) for p in PLUGIN_CODE), name
        assert any(f"plugins/{name}/tests/" in str(p) for p in PLUGIN_TESTS), name
    assert any("minimal-plugin/bioimageio_example_linear" in str(p) for p in PLUGIN_CODE)
    assert any("minimal-plugin/tests" in str(p) for p in PLUGIN_TESTS)


@pytest.mark.parametrize("path", PLUGIN_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_code_imports_the_door_only(path: Path) -> None:
    found = violations(path.read_text("utf-8"), CODE_MODULES, bare=False)
    assert not found, f"{path.relative_to(ROOT)} imports beside bioimageio_core.plugin: {found}"


@pytest.mark.parametrize("path", PLUGIN_TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_tests_import_the_door_its_test_kit_and_the_public_api(path: Path) -> None:
    found = violations(path.read_text("utf-8"), TEST_MODULES, bare=True)
    assert not found, f"{path.relative_to(ROOT)} imports beside the door and the public API: {found}"
