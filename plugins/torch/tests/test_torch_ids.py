"""A model opened by bioimage.io id is a fetched source: its ``pytorch_state_dict``
architecture code runs only with consent, also when it comes from the cache offline."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioimageio_core.plugin.testing import LocalServer, MiniCollection, assert_passed, run_test

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tiny-nuclei-unet"
MODEL_ID = "tiny-nuclei-unet"
FORMAT = "pytorch_state_dict"


@pytest.fixture
def collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    monkeypatch.setenv("BIOIMAGEIO_CACHE_PATH", str(tmp_path / "cache"))
    for flag in ("BIOIMAGEIO_OFFLINE", "BIOIMAGEIO_ALLOW_REMOTE_CODE"):
        monkeypatch.setenv(flag, "0")  # the CLI options set them; restored after the test
    mini = MiniCollection(tmp_path / "served")
    shutil.copytree(EXAMPLE, mini.root / "artifacts" / MODEL_ID / "files")
    mini.write_maps()
    with LocalServer(mini.root) as server:
        for variable, value in mini.env(server).items():
            monkeypatch.setenv(variable, value)
        yield server


def _refused(exit_code: int, summary: dict[str, object]) -> bool:
    text = str(summary)
    return exit_code == 1 and "refusing to run the architecture code" in text


def test_state_dict_by_id_needs_consent_online_and_offline(
    collection: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _refused(*run_test(MODEL_ID, "--weights-format", FORMAT))
    exit_code, summary = run_test(MODEL_ID, "--weights-format", FORMAT, "--allow-remote-code")
    assert_passed(exit_code, summary, [FORMAT], 1)
    collection.stop()
    # served from the cache now, still a fetched source
    monkeypatch.setenv("BIOIMAGEIO_ALLOW_REMOTE_CODE", "0")
    assert _refused(*run_test(MODEL_ID, "--weights-format", FORMAT, "--offline"))
