"""``with obj:`` closes the object on every way out of the block."""

from __future__ import annotations

import pytest

from bioimageio_core._closing import Closing
from bioimageio_core.cli._common import Progress
from bioimageio_core.remote.client import ServerClient


class Counted(Closing):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_leaving_the_block_closes_once_also_after_an_error() -> None:
    with Counted() as obj:
        assert obj.closed == 0
    assert obj.closed == 1
    other = Counted()
    with pytest.raises(KeyError), other:
        raise KeyError("x")
    assert other.closed == 1


def test_progress_and_server_client_close_what_they_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    with Progress(3, "blocks", enabled=True) as progress:
        progress.update()
        assert progress._bar is not None
    assert progress._bar is None
    progress.close()  # again: nothing left to close
    closed: list[bool] = []
    with ServerClient("http://127.0.0.1:9") as client:
        monkeypatch.setattr(client._connections, "close", lambda: closed.append(True))
    assert closed == [True]
