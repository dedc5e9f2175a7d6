"""May code that came with a description run here? The one place that decides.

A description can make Python or framework code run: a ``pytorch_state_dict`` architecture file,
a library callable named by ``architecture.import_from``, a TensorFlow graph with side-effecting
operations. Every place that is about to run such code calls :func:`require_code_consent`
(plugins: :meth:`bioimageio_core.adapters.AdapterRequest.require_code_consent`) first.

The rule:

* **trusted**: a local file, folder or zip package the user named (and a dict or descriptor built
  in Python: its files resolve against a local folder);
* **untrusted**: anything fetched: a description opened from a URL (or resolved from an id to a
  URL), a zip package downloaded from a URL (``ZipRoot.origin``), a local copy the project made
  of such a description (``FolderRoot.origin``), a file reference that is itself a URL.

Untrusted code runs only when ``Settings.allow_remote_code`` is true
(``BIOIMAGEIO_ALLOW_REMOTE_CODE=1``, command line flag ``--allow-remote-code``); otherwise
:class:`~bioimageio_core.errors.RemoteCodeError` says what would run, where it came from, the
field, and how to allow it.

Library callables are code of packages installed here; even with consent a description may not
name the Python standard library or builtins (:func:`import_library_callable`): no model lives
there, and ``os.system`` with a command as kwargs is the obvious abuse.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

import attrs

from bioimageio_core.errors import BioimageioError, CodeRefusedError, Loc, RemoteCodeError
from bioimageio_core.references import file_name, is_remote_reference
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.sources.roots import FolderRoot, UrlRoot, ZipRoot

_NOT_LIBRARIES = frozenset({"builtins", "__main__", "__future__"})
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_PUBLIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@attrs.frozen
class CodeOrigin:
    """Where code comes from, and whether it is trusted without asking."""

    trusted: bool
    where: str
    """A text for messages: a local path, a URL, or "<file> in <package downloaded from URL>"."""


def code_origin(root: object, reference: str | None = None) -> CodeOrigin:
    """The origin of code at ``reference`` (relative to ``root``), or of the description at ``root``.

    ``root`` is a description's root (:data:`~bioimageio_core.sources.Root`), a local path, a URL
    string, or None (a description built in Python: files resolve against the current folder).
    Anything else is judged untrusted.
    """
    if reference is not None and is_remote_reference(reference):
        return CodeOrigin(False, reference)
    base = _root_origin(root)
    if reference is None:
        return base
    if isinstance(root, UrlRoot):
        return CodeOrigin(False, root.join(reference))
    if isinstance(root, str) and is_remote_reference(root):
        return CodeOrigin(False, root.rstrip("/") + "/" + reference)
    return CodeOrigin(base.trusted, f"{reference} in {base.where}")


def _root_origin(root: object) -> CodeOrigin:
    if root is None:
        return CodeOrigin(True, f"the current folder {os.getcwd()}")
    if isinstance(root, FolderRoot):
        if root.origin is None:
            return CodeOrigin(True, str(root.path))
        return CodeOrigin(False, f"{root.path} (a local copy of {root.origin})")
    if isinstance(root, ZipRoot):
        if root.origin is None:
            return CodeOrigin(True, str(root.path))
        return CodeOrigin(False, f"the package downloaded from {root.origin}")
    if isinstance(root, UrlRoot):
        return CodeOrigin(False, root.base)
    if isinstance(root, PurePath):
        return CodeOrigin(True, str(root))
    if isinstance(root, str):
        return CodeOrigin(not is_remote_reference(root), root)
    return CodeOrigin(False, f"{root} (a root of type {type(root).__name__})")


def code_references(descr: Any) -> Iterator[tuple[Loc, str]]:
    """``(field location, reference)`` of every file of ``descr`` that holds code to run.

    Today: the architecture files of ``pytorch_state_dict`` weights (any weights entry with an
    ``architecture.source``) and the files of ``custom`` postprocessing steps. A new kind of code
    file is added here, so that copies of a description (:func:`description_code_origin`) stay
    as untrusted as their code.
    """
    weights = getattr(descr, "weights", None)
    formats = getattr(weights, "formats", None) or {}
    for name, entry in formats.items():
        source = getattr(getattr(entry, "architecture", None), "source", None)
        if isinstance(source, str):
            yield ("weights", name, "architecture", "source"), source
    for i, output in enumerate(getattr(descr, "outputs", None) or ()):
        for j, step in enumerate(getattr(output, "postprocessing", None) or ()):
            source = getattr(getattr(step, "kwargs", None), "source", None)
            if getattr(step, "id", None) == "custom" and isinstance(source, str):
                yield ("outputs", i, "postprocessing", j, "source"), source


def description_code_origin(descr: Any) -> CodeOrigin:
    """The origin of the code a description brings, judged on the description as a whole.

    Untrusted when its root is, or when a code file (:func:`code_references`) is a URL. Use it
    when making a local copy of a description that will be run (a ``FolderRoot`` with ``origin``).
    """
    root = getattr(descr, "root", None)
    origin = code_origin(root)
    if not origin.trusted:
        return origin
    for _, reference in code_references(descr):
        if is_remote_reference(reference):
            return CodeOrigin(False, f"{origin.where}, whose code file {reference} is remote")
    return origin


def require_code_consent(
    what: str,
    *,
    root: object,
    reference: str | None = None,
    loc: Loc | str | None = None,
    settings: Settings | None = None,
) -> CodeOrigin:
    """Raise :class:`RemoteCodeError` unless the code ``what`` may run; returns its origin.

    ``what`` names the code for the user ("the architecture unet.py:UNet of the
    pytorch_state_dict weights"); ``reference`` is its file as written in the description (None
    when the code is not a file of its own, e.g. a library callable the description names);
    ``loc`` the field path. Call it before fetching or importing anything.
    """
    origin = code_origin(root, reference)
    allowed = (settings if settings is not None else get_settings()).allow_remote_code
    if not origin.trusted and not allowed:
        raise RemoteCodeError(what, origin.where, loc=loc)
    return origin


def is_standard_library(module_name: str) -> bool:
    """Whether ``module_name`` (dotted) belongs to Python itself: the standard library (also its
    private modules such as ``_posixsubprocess`` and submodules such as ``os.path``), the
    builtins, ``__main__``."""
    top = module_name.split(".", 1)[0]
    return (
        top in sys.stdlib_module_names or top in sys.builtin_module_names or top in _NOT_LIBRARIES
    )


def check_library_module(import_from: str, *, loc: Loc | None = None) -> None:
    """Refuse (before importing anything) a module name that is not an installed library's."""
    if not _DOTTED_NAME.fullmatch(import_from):
        raise CodeRefusedError(
            f"{import_from!r} is not a module name (dotted Python identifiers)", loc=loc
        )
    if is_standard_library(import_from):
        raise CodeRefusedError(
            f"refusing to import {import_from!r} for a model: it is part of the Python standard "
            "library or builtins, where no model lives",
            loc=loc,
            hint="name the module of the installed package that defines the network",
        )


def defining_module(obj: object) -> str:
    """The module that defines ``obj`` (a class, a function, or the type of a callable object)."""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        module = getattr(obj, "__module__", None)
        if isinstance(module, str):
            return module
    return type(obj).__module__


def check_library_object(obj: object, *, label: str, loc: Loc | None = None) -> None:
    """Refuse a callable that the standard library or builtins define, wherever it was found.

    Catches re-exports: ``mypackage.system`` that is ``os.system`` is refused as well.
    """
    module = defining_module(obj)
    if is_standard_library(module):
        raise CodeRefusedError(
            f"refusing to call {label}: it is {module}.{getattr(obj, '__qualname__', '')} "
            "from the Python standard library or builtins, where no model lives",
            loc=loc,
            hint="name the class or function of the installed package that builds the network",
        )


def import_library_callable(
    import_from: str, name: str, *, loc: Loc | None = None
) -> Callable[..., Any]:
    """``import_from.name`` from an installed package, after the standard-library checks.

    ``loc`` is the field path of the architecture (or op) the names come from; the errors point
    at ``<loc>.import_from`` / ``<loc>.callable``. Consent (:func:`require_code_consent`) is the
    caller's job and comes first.

    Raises:
        CodeRefusedError: a standard-library / builtins module or callable, or a private name.
        BioimageioError: the module cannot be imported or has no such callable.
    """
    module_loc = None if loc is None else (*loc, "import_from")
    callable_loc = None if loc is None else (*loc, "callable")
    check_library_module(import_from, loc=module_loc)
    if not _PUBLIC_NAME.fullmatch(name):
        raise CodeRefusedError(
            f"refusing to call {import_from}.{name}: a library architecture must be a public "
            "name (no leading underscore)",
            loc=callable_loc,
        )
    try:
        module = importlib.import_module(import_from)
    except ImportError as error:
        raise BioimageioError(
            f"the module {import_from!r} cannot be imported: {error}",
            loc=module_loc,
            hint=f"install the package that provides {import_from!r} into this environment",
        ) from error
    obj = getattr(module, name, None)
    if obj is None or not callable(obj):
        public = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v))
        raise BioimageioError(
            f"{import_from} has no callable {name!r}; callables defined there: {public}",
            loc=callable_loc,
        )
    check_library_object(obj, label=f"{import_from}.{name}", loc=callable_loc)
    return obj  # type: ignore[no-any-return]


def exec_code_file(path: Path, source: str, *, kind: str = "code") -> ModuleType:
    """Execute the Python file at ``path`` (``source`` as the description names it) as a fresh
    module named ``_bioimageio_<kind>_<file stem>_<random>``.

    The module is in ``sys.modules`` only while its code runs (some code, e.g. dataclasses, looks
    itself up there), so executing the same file twice gives two independent modules. Consent
    (:func:`require_code_consent`) is the caller's job and comes first; whatever the file's code
    raises propagates (the caller says which file of which field failed).
    """
    stem = re.sub(r"\W", "_", PurePath(file_name(source)).stem) or kind
    module_name = f"_bioimageio_{kind}_{stem}_{uuid.uuid4().hex[:12]}"
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_loader(module_name, loader)
    if spec is None:  # pragma: no cover - spec_from_loader only fails for exotic loaders
        raise ImportError(f"cannot create an import spec for {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    finally:
        sys.modules.pop(module_name, None)
    return module


__all__ = [
    "CodeOrigin",
    "check_library_module",
    "check_library_object",
    "code_origin",
    "code_references",
    "defining_module",
    "description_code_origin",
    "exec_code_file",
    "import_library_callable",
    "is_remote_reference",
    "is_standard_library",
    "require_code_consent",
]
