"""The one consent rule: local sources the user named are trusted, anything fetched is not."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.consent import (
    CodeOrigin,
    code_origin,
    code_references,
    description_code_origin,
    is_remote_reference,
    require_code_consent,
)
from bioimageio_core.errors import RemoteCodeError
from bioimageio_core.plugin.testing import (
    ModelDef,
    WeightsDef,
    build_model,
    make_request,
    model_description,
)
from bioimageio_core.settings import Settings
from bioimageio_core.sources import FolderRoot, UrlRoot, ZipRoot

URL = "https://example.com/models/tiny/"
LOCAL = Path("/data/models/tiny")


@pytest.mark.parametrize(
    ("root", "trusted", "where"),
    [
        (FolderRoot(LOCAL), True, str(LOCAL)),
        (ZipRoot(LOCAL / "m.zip"), True, str(LOCAL / "m.zip")),
        (LOCAL, True, str(LOCAL)),
        (str(LOCAL), True, str(LOCAL)),
        (UrlRoot(URL), False, URL),
        (URL, False, URL),
        (
            ZipRoot(Path("/cache/m.zip"), origin="https://example.com/m.zip"),
            False,
            "the package downloaded from https://example.com/m.zip",
        ),
        (
            FolderRoot(LOCAL, origin=URL),
            False,
            f"{LOCAL} (a local copy of {URL})",
        ),
        (object(), False, None),
    ],
)
def test_origin_of_a_root(root: object, trusted: bool, where: str | None) -> None:
    origin = code_origin(root)
    assert origin.trusted is trusted
    if where is not None:
        assert origin.where == where


def test_a_description_built_in_python_is_local() -> None:
    assert code_origin(None) == CodeOrigin(True, f"the current folder {os.getcwd()}")


@pytest.mark.parametrize(
    ("root", "reference", "trusted", "where"),
    [
        (FolderRoot(LOCAL), "nets.py", True, f"nets.py in {LOCAL}"),
        (FolderRoot(LOCAL), "https://x.org/nets.py", False, "https://x.org/nets.py"),
        (FolderRoot(LOCAL), "s3://bucket/nets.py", False, "s3://bucket/nets.py"),
        (FolderRoot(LOCAL), "file:///data/nets.py", True, None),
        (FolderRoot(LOCAL), "C:\\models\\nets.py", True, None),
        (UrlRoot(URL), "sub/nets.py", False, URL + "sub/nets.py"),
        (URL.rstrip("/"), "nets.py", False, URL + "nets.py"),
        (
            ZipRoot(Path("/cache/m.zip"), origin="https://example.com/m.zip"),
            "nets.py",
            False,
            "nets.py in the package downloaded from https://example.com/m.zip",
        ),
        (FolderRoot(LOCAL, origin=URL), "nets.py", False, None),
    ],
)
def test_origin_of_a_reference(
    root: object, reference: str, trusted: bool, where: str | None
) -> None:
    origin = code_origin(root, reference)
    assert origin.trusted is trusted
    if where is not None:
        assert origin.where == where


_segment = st.text(
    st.characters(whitelist_categories=("L", "N"), whitelist_characters="_-."),
    min_size=1,
    max_size=12,
)
_relative = st.lists(_segment, min_size=1, max_size=4).map(lambda parts: "/".join(parts))
_untrusted_roots = st.sampled_from(
    [
        UrlRoot(URL),
        ZipRoot(Path("/cache/m.zip"), origin="https://example.com/m.zip"),
        FolderRoot(LOCAL, origin=URL),
        URL,
    ]
)
_trusted_roots = st.sampled_from([FolderRoot(LOCAL), ZipRoot(LOCAL / "m.zip"), LOCAL, None])
_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}.org/{path}",
    st.sampled_from(["http", "https", "s3", "ftp", "gs", "HTTPS"]),
    _segment,
    _relative,
)


@given(_untrusted_roots, _relative)
def test_nothing_relative_to_a_fetched_root_is_trusted(root: object, reference: str) -> None:
    assert not code_origin(root, reference).trusted


@given(st.one_of(_trusted_roots, _untrusted_roots), _urls)
def test_a_url_reference_is_never_trusted(root: object, reference: str) -> None:
    assert is_remote_reference(reference)
    origin = code_origin(root, reference)
    assert not origin.trusted


@given(_trusted_roots, _relative)
def test_relative_references_of_a_local_root_are_trusted(root: object, reference: str) -> None:
    origin = code_origin(root, reference)
    assert origin.trusted
    assert origin.where.startswith(reference + " in ")


def test_refusal_says_what_where_which_field_and_how_to_allow() -> None:
    with pytest.raises(RemoteCodeError) as info:
        require_code_consent(
            "the architecture nets.py:Net",
            root=UrlRoot(URL),
            reference="nets.py",
            loc="$.weights.pytorch_state_dict.architecture.source",
            settings=Settings(allow_remote_code=False),
        )
    error = info.value
    assert (error.what, error.where) == ("the architecture nets.py:Net", URL + "nets.py")
    assert error.loc == "$.weights.pytorch_state_dict.architecture.source"
    text = str(error)
    assert text.startswith(f"refusing to run the architecture nets.py:Net from {URL}nets.py")
    assert "(at $.weights.pytorch_state_dict.architecture.source)" in text
    assert "--allow-remote-code" in text and "BIOIMAGEIO_ALLOW_REMOTE_CODE=1" in text


def test_consent_comes_from_the_settings_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = require_code_consent(
        "code", root=UrlRoot(URL), settings=Settings(allow_remote_code=True)
    )
    assert allowed == CodeOrigin(False, URL)
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "0")
    with pytest.raises(RemoteCodeError):
        require_code_consent("code", root=UrlRoot(URL))
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "1")
    assert not require_code_consent("code", root=UrlRoot(URL)).trusted
    monkeypatch.delenv("BIOIMAGEIO_ALLOW_REMOTE_CODE")
    local = require_code_consent("code", root=FolderRoot(LOCAL), reference="a.py")
    assert local.trusted


def _state_dict_model(folder: Path, architecture_source: str, weights: str = "w.pt") -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.pt").write_bytes(b"weights")
    x = np.zeros((1, 1, 4, 4), np.float32)
    entry = WeightsDef(
        "pytorch_state_dict",
        weights,
        {
            "architecture": {"source": architecture_source, "callable": "Net"},
            "pytorch_version": "2.13",
        },
    )
    model = ModelDef.from_arrays("state dict model", {"raw": x}, {"out": x}, [entry], letters="bcyx")
    return build_model(model_description(folder, model), FolderRoot(folder))


def test_a_description_is_as_untrusted_as_its_code_files(tmp_path: Path) -> None:
    local = _state_dict_model(tmp_path / "a", "nets.py")
    assert list(code_references(local)) == [
        (("weights", "pytorch_state_dict", "architecture", "source"), "nets.py")
    ]
    assert description_code_origin(local).trusted
    # remote weights are data: the description stays trusted
    remote_weights = _state_dict_model(tmp_path / "b", "nets.py", "https://x.org/w.pt")
    assert description_code_origin(remote_weights).trusted
    # a remote architecture file makes it untrusted
    remote_code = _state_dict_model(tmp_path / "c", "https://x.org/nets.py")
    origin = description_code_origin(remote_code)
    assert not origin.trusted
    assert origin.where.endswith("whose code file https://x.org/nets.py is remote")
    # a fetched description is untrusted as a whole
    fetched = _state_dict_model(tmp_path / "d", "nets.py")
    fetched = attrs.evolve(fetched, root=UrlRoot(URL))
    assert description_code_origin(fetched) == CodeOrigin(False, URL)


def test_the_adapter_request_asks_with_the_model_root_and_its_settings(tmp_path: Path) -> None:
    model = _state_dict_model(tmp_path / "m", "nets.py")
    request = make_request(model, "pytorch_state_dict", settings=Settings())
    assert request.require_code_consent("code", reference="nets.py").trusted
    remote = attrs.evolve(request, model=attrs.evolve(model, root=UrlRoot(URL)))
    with pytest.raises(RemoteCodeError) as info:
        remote.require_code_consent("the code", loc="$.x", reference="nets.py")
    assert (info.value.where, info.value.loc) == (URL + "nets.py", "$.x")
    allowed = attrs.evolve(remote, settings=Settings(allow_remote_code=True))
    assert allowed.require_code_consent("the code").where == URL


def test_posix_path_reference_is_not_a_url() -> None:
    assert not is_remote_reference(str(PurePosixPath("/abs/a.py")))
    assert not is_remote_reference("sub/dir/a.py")
