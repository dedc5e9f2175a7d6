"""The ``bioimageio_source_resolvers`` and ``bioimageio_image_io`` hooks: order, conflicts,
broken plugins (fake distributions with real entry points)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bioimageio_core import plugins
from bioimageio_core.consent import code_origin
from bioimageio_core.errors import SourceError, UnresolvedSourceError
from bioimageio_core.io import load_tensor, save_tensor
from bioimageio_core.sources import FolderRoot, read_description
from bioimageio_core.tensor import Tensor

MakeDist = Callable[[str, str], str]

RESOLVER_PLUGIN = """
from pathlib import Path
from bioimageio_core.hookspecs import ResolvedSource, SourceResolverSpec, hookimpl

FOLDER = {folder!r}

def resolve(source, settings):
    {body}

@hookimpl
def bioimageio_source_resolvers(register):
    register.add(SourceResolverSpec(name={name!r}, claims=lambda s: s.startswith({prefix!r}),
                                    resolve=resolve, forms=({form!r},), priority={priority}))
"""

YAML = "format_version: 0.3.0\ntype: dataset\nname: {name}\ndescription: d\n"


def resolver_plugin(
    folder: Path, name: str, prefix: str, body: str, priority: int = 50, form: str = "x:<name>"
) -> str:
    return RESOLVER_PLUGIN.format(
        folder=str(folder), name=name, prefix=prefix, body=body, priority=priority, form=form
    )


def test_third_party_resolver_to_a_local_folder_is_used(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models" / "m1").mkdir(parents=True)
    (tmp_path / "models" / "m1" / "rdf.yaml").write_text(YAML.format(name="local one"))
    ep = make_dist(
        "bioimageio-local-shelf",
        resolver_plugin(
            tmp_path / "models", "shelf", "shelf:", "return ResolvedSource(str(Path(FOLDER) / "
            "source[len('shelf:'):]))"
        ),
    )
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    raw = read_description("shelf:m1")
    assert raw.data["name"] == "local one"
    assert raw.resolution is not None and raw.resolution.resolver == "shelf"
    # named by an id, so fetched: its code needs consent although the files are local
    assert raw.root == FolderRoot((tmp_path / "models" / "m1").resolve(), origin="shelf:m1")
    assert not code_origin(raw.root, "arch.py").trusted
    with pytest.raises(SourceError) as info:
        read_description("nothing/rdf.yaml")
    assert "x:<name>" in (info.value.hint or "")  # the plugin's forms join the list


def test_resolvers_are_asked_by_priority(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rdf.yaml").write_text(YAML.format(name="mirror"))
    body = "return ResolvedSource(str(Path(FOLDER) / 'rdf.yaml'))"
    # claims every id the built-in bioimage.io resolver claims, but is asked first
    ep = make_dist("bioimageio-mirror", resolver_plugin(tmp_path, "mirror", "", body, 10))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    assert list(plugins.source_resolvers()) == ["mirror", "huggingface", "bioimage.io"]
    raw = read_description("affable-shark")
    assert raw.data["name"] == "mirror"
    assert raw.resolution is not None and raw.resolution.resolver == "mirror"


def test_broken_resolver_is_named(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = make_dist(
        "bioimageio-broken-resolver",
        resolver_plugin(tmp_path, "broken", "b:", "raise RuntimeError('database down')"),
    )
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    with pytest.raises(SourceError) as info:
        read_description("b:x")
    assert "source resolver 'broken' failed on 'b:x': RuntimeError: database down" in str(info.value)


def test_resolver_returning_the_wrong_type_is_named(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = make_dist("bioimageio-sloppy", resolver_plugin(tmp_path, "sloppy", "s:", "return 'x'"))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    with pytest.raises(SourceError, match="'sloppy' returned str for 's:x', not a ResolvedSource"):
        read_description("s:x")


IMAGE_PLUGIN = """
import numpy as np
from bioimageio_core.hookspecs import ImageIOSpec, hookimpl
from bioimageio_core.io import RawArray

def read(location, mmap):
    return RawArray(np.loadtxt(location.path, ndmin=2), ("y", "x"))

def write(location, tensor):
    np.savetxt(location.path, tensor.transpose(("y", "x")).data)

@hookimpl
def bioimageio_image_io(register):
    register.add(ImageIOSpec(name={name!r}, suffixes={suffixes!r}, read=read, write=write))
"""


def test_third_party_format_reads_and_writes_through_io(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = make_dist("bioimageio-text-arrays", IMAGE_PLUGIN.format(name="text", suffixes=(".txt",)))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    data = np.arange(12, dtype=np.float64).reshape(3, 4)
    save_tensor(tmp_path / "a.txt", Tensor(data, ("y", "x")))
    loaded = load_tensor(tmp_path / "a.txt")
    assert loaded.dims == ("y", "x")
    np.testing.assert_array_equal(loaded.data, data)


def test_a_suffix_taken_by_a_builtin_format_is_refused(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = make_dist(
        "bioimageio-tiff-rival", IMAGE_PLUGIN.format(name="rival", suffixes=(".rival", ".tif"))
    )
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    (info,) = [i for i in plugins.plugin_infos() if i.name == ep]
    assert info.status == "failed"
    assert info.error is not None
    assert "file suffix '.tif' (of 'TIFF' and of 'rival') is registered twice" in info.error
    assert "builtin-image-io" in info.error and ep in info.error
    assert info.image_io == ()  # whatever the failing hook registered is discarded
    assert "rival" not in plugins.image_io()
    save_tensor(tmp_path / "a.tif", Tensor(np.ones((2, 3), np.uint8), ("y", "x")))
    assert load_tensor(tmp_path / "a.tif").dims == ("y", "x")  # still the built-in TIFF


def test_when_every_claiming_resolver_fails_all_errors_are_listed(
    make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        "from bioimageio_core.errors import UnresolvedSourceError\n"
        "    raise UnresolvedSourceError('not on the shelf', source=source, "
        "suggestions=('shelf-shark',))"
    )
    ep = make_dist("bioimageio-shelf-first", resolver_plugin(tmp_path, "shelf", "", body, 10))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", ep)
    with pytest.raises(UnresolvedSourceError) as info:
        read_description("affable-shark")  # the built-in resolver's collection is unreachable
    text = info.value.message
    assert text.startswith("no resolver could resolve 'affable-shark':")
    assert "shelf: not on the shelf" in text
    assert "bioimage.io: cannot reach the bioimage.io collection" in text
    assert info.value.suggestions == ("shelf-shark",)
