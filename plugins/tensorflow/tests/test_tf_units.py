"""Safe unzipping, signature name order and devices (no TensorFlow import needed)."""

from __future__ import annotations

import random
import stat
import zipfile
from pathlib import Path

import pytest
from bioimageio_run_tensorflow.adapter import tf_device
from bioimageio_run_tensorflow.signatures import match_signature, natural_key
from bioimageio_run_tensorflow.unzip import unpack_saved_model
from hypothesis import given
from hypothesis import strategies as st

from bioimageio_core.plugin import PluginError, SourceError


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _unpack(archive: Path, cache: Path, max_bytes: int = 1 << 20) -> Path:
    return unpack_saved_model(
        archive, cache=cache, sha256=None, max_bytes=max_bytes, name=archive.name
    )


def test_unpacks_once_into_the_cache(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "m.zip", {"sm/saved_model.pb": b"pb", "sm/variables/v.index": b"i"})
    folder = _unpack(archive, tmp_path / "cache")
    assert folder.name == "sm" and (folder / "saved_model.pb").read_bytes() == b"pb"
    (folder / "saved_model.pb").write_bytes(b"kept")
    assert _unpack(archive, tmp_path / "cache") == folder
    assert (folder / "saved_model.pb").read_bytes() == b"kept"  # not unpacked again
    assert [p.name for p in (tmp_path / "cache" / "tensorflow-saved-model").iterdir()] == [
        folder.parent.name
    ]


@pytest.mark.parametrize("member", ["../evil.pb", "/abs/saved_model.pb", "a/../../x", "C:/x"])
def test_refuses_members_outside_the_folder(tmp_path: Path, member: str) -> None:
    archive = _zip(tmp_path / "m.zip", {"saved_model.pb": b"pb", member: b"x"})
    with pytest.raises(SourceError, match="outside the target folder"):
        _unpack(archive, tmp_path / "cache")
    assert not list((tmp_path / "cache" / "tensorflow-saved-model").glob("[!.]*"))


def test_refuses_symlinks_and_oversized_zips(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("saved_model.pb")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(SourceError, match="symbolic link"):
        _unpack(archive, tmp_path / "cache")
    big = _zip(tmp_path / "big.zip", {"saved_model.pb": b"0" * 100})
    with pytest.raises(SourceError, match="more than 50 bytes"):
        _unpack(big, tmp_path / "cache", max_bytes=50)


def test_needs_exactly_one_saved_model(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no saved_model.pb"):
        _unpack(_zip(tmp_path / "none.zip", {"x.txt": b""}), tmp_path / "cache")
    with pytest.raises(SourceError, match="several SavedModels"):
        _unpack(
            _zip(tmp_path / "two.zip", {"a/saved_model.pb": b"", "b/saved_model.pb": b""}),
            tmp_path / "cache",
        )
    (tmp_path / "plain.bin").write_bytes(b"no zip")
    with pytest.raises(SourceError, match="not a zip file"):
        _unpack(tmp_path / "plain.bin", tmp_path / "cache")


@given(st.integers(min_value=1, max_value=30), st.randoms(use_true_random=False))
def test_natural_order_is_declared_order_of_tuple_outputs(n: int, rnd: random.Random) -> None:
    names = [f"output_{i}" for i in range(n)]
    shuffled = names[:]
    rnd.shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == names
    ids = [f"t{i}" for i in range(n)]
    assert match_signature(shuffled, ids, what="outputs", source="m.zip") == tuple(names)


def test_names_equal_to_ids_match_by_name() -> None:
    assert match_signature(["b", "a"], ["a", "b"], what="inputs", source="m.zip") == ("a", "b")
    with pytest.raises(PluginError, match="has 1 inputs"):
        match_signature(["x"], ["a", "b"], what="inputs", source="m.zip")


def test_devices() -> None:
    assert tf_device(None) is None
    assert tf_device(("cpu",)) == "/CPU:0"
    assert tf_device(("cuda",)) == "/GPU:0"
    assert tf_device(("cuda:2",)) == "/GPU:2"
    with pytest.raises(PluginError, match="'tpu'"):
        tf_device(("tpu",))
