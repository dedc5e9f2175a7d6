"""Library callables a description names: never the standard library or builtins."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.consent import (
    check_library_module,
    defining_module,
    import_library_callable,
    is_standard_library,
)
from bioimageio_core.errors import BioimageioError, CodeRefusedError, Loc

LOC: Loc = ("weights", "pytorch_state_dict", "architecture")
LOC_PATH = "$.weights.pytorch_state_dict.architecture"

LIBRARY = """
import functools
import os
import subprocess
from os import system
from subprocess import run as launch

class Net:
    def __init__(self, width=1):
        self.width = width

def make_net(width=1):
    return Net(width)

shell = functools.partial(subprocess.call, shell=True)
spawn = os.spawnl
evaluate = eval
"""


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An installed third-party module that re-exports standard-library callables."""
    name = "consent_test_library"
    (tmp_path / f"{name}.py").write_text(LIBRARY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "name",
    [
        "os",
        "os.path",
        "posix",
        "nt",
        "subprocess",
        "importlib",
        "importlib.util",
        "builtins",
        "_posixsubprocess",
        "shutil",
        "pickle",
        "ctypes",
        "runpy",
        "code",
        "pty",
        "__main__",
        "json.decoder",
    ],
)
def test_standard_library_modules(name: str) -> None:
    assert is_standard_library(name)


@pytest.mark.parametrize(
    "name", ["numpy", "torch.nn", "careamics.models.unet", "bioimageio_core", "my_os", "oscar"]
)
def test_library_modules(name: str) -> None:
    assert not is_standard_library(name)


@given(
    st.sampled_from(sorted(sys.stdlib_module_names)),
    st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), max_size=3),
)
def test_every_standard_library_module_and_submodule_is_refused(top: str, parts: list[str]) -> None:
    name = ".".join([top, *parts])
    assert is_standard_library(name)
    with pytest.raises(CodeRefusedError, match="standard library"):
        check_library_module(name, loc=LOC)


def test_refused_before_anything_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_import(name: str, package: str | None = None) -> object:
        raise AssertionError(f"imported {name}")

    monkeypatch.setattr(importlib, "import_module", no_import)
    for module, name in [("os", "system"), ("subprocess", "run"), ("builtins", "exec")]:
        with pytest.raises(CodeRefusedError) as info:
            import_library_callable(module, name, loc=LOC)
        assert info.value.loc == f"{LOC_PATH}.import_from"


@pytest.mark.parametrize(
    "module", ["../evil", "os; rm -rf /", ".relative", "a..b", "", "consent test"]
)
def test_module_names_must_be_dotted_identifiers(module: str) -> None:
    with pytest.raises(CodeRefusedError, match="not a module name"):
        import_library_callable(module, "Net", loc=LOC)


@pytest.mark.parametrize(
    ("name", "defined_in"),
    [
        ("system", "posix"),
        ("launch", "subprocess"),
        ("shell", "functools"),
        ("spawn", "os"),
        ("evaluate", "builtins"),
    ],
)
def test_standard_library_callables_re_exported_by_a_library_are_refused(
    library: str, name: str, defined_in: str
) -> None:
    with pytest.raises(CodeRefusedError, match="standard library") as info:
        import_library_callable(library, name, loc=LOC)
    assert info.value.loc == f"{LOC_PATH}.callable"
    assert f"it is {defined_in}." in str(info.value)


def test_library_classes_and_functions_are_returned(library: str) -> None:
    net = import_library_callable(library, "Net", loc=LOC)
    assert net(width=3).width == 3
    assert import_library_callable(library, "make_net")(2).width == 2
    assert defining_module(net) == library


def test_private_names_are_refused(library: str) -> None:
    for name in ("__class__", "_hidden", "__builtins__"):
        with pytest.raises(CodeRefusedError, match="public name"):
            import_library_callable(library, name, loc=LOC)


def test_missing_module_and_missing_callable(library: str) -> None:
    with pytest.raises(BioimageioError, match="cannot be imported") as missing:
        import_library_callable("no_such_package_for_consent_tests.nets", "Net", loc=LOC)
    assert missing.value.hint is not None and "install the package" in missing.value.hint
    with pytest.raises(BioimageioError, match=r"has no callable 'Nett'.*'Net'") as info:
        import_library_callable(library, "Nett", loc=LOC)
    assert info.value.loc == f"{LOC_PATH}.callable"
