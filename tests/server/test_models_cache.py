"""The server's set of loaded models: LRU eviction, unloading, one load per key, per-model locks."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from concurrently import run_concurrently

from bioimageio_core.server.models import LoadSpec, ModelCache, UnknownModelKey

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-nuclei-unet" / "rdf.yaml"


class FakeAdapter:
    """Records overlapping forward calls and unloads."""

    def __init__(self, name: str, log: list[str], delay_s: float = 0.0) -> None:
        self.name = name
        self.log = log
        self.delay_s = delay_s
        self.active = 0
        self.max_active = 0
        self.unloaded = False
        self._lock = threading.Lock()

    def forward(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay_s)
        with self._lock:
            self.active -= 1
        return {"out": inputs["raw"] * 2}

    def unload(self) -> None:
        self.unloaded = True
        self.log.append(f"unload {self.name}")


class FakeLoader:
    def __init__(self, delay_s: float = 0.0, forward_delay_s: float = 0.0) -> None:
        self.log: list[str] = []
        self.adapters: dict[str, FakeAdapter] = {}
        self.delay_s = delay_s
        self.forward_delay_s = forward_delay_s
        self.loads = 0
        self._lock = threading.Lock()

    def __call__(self, spec: LoadSpec) -> Any:
        from bioimageio_core.server.models import Loaded

        with self._lock:
            self.loads += 1
        time.sleep(self.delay_s)
        name = str(spec.source)
        adapter = FakeAdapter(name, self.log, self.forward_delay_s)
        self.adapters[name] = adapter
        self.log.append(f"load {name}")
        return Loaded(descr=_descr(), adapter=adapter, weights_format="fake")  # type: ignore[arg-type]


@functools.cache
def _descr() -> Any:
    from bioimageio_core import load_description

    return load_description(EXAMPLE, perform_io_checks=False)


def _spec(name: str) -> LoadSpec:
    return LoadSpec(package=None, source=name, weights_format=None, devices=None)


def test_keys_are_stable_and_distinct() -> None:
    assert _spec("a").key == _spec("a").key
    assert _spec("a").key != _spec("b").key
    assert LoadSpec(None, "a", "onnx", None).key != _spec("a").key
    assert LoadSpec(None, "a", None, ("cpu",)).key != _spec("a").key


def test_unknown_key() -> None:
    cache = ModelCache(2, FakeLoader())
    with pytest.raises(UnknownModelKey), cache.use("nope"):
        pass


def test_least_recently_used_model_is_unloaded_and_reloaded_on_demand() -> None:
    loader = FakeLoader()
    cache = ModelCache(2, loader)
    a, b, c = (cache.register(_spec(n)) for n in "abc")
    for key in (a, b, a, c):  # a was used after b: b goes
        with cache.use(key):
            pass
    assert loader.log == ["load a", "load b", "load c", "unload b"]
    assert cache.is_loaded(a) and cache.is_loaded(c) and not cache.is_loaded(b)
    with cache.use(b) as entry:  # evicted keys stay known: loaded again
        assert entry.adapter is loader.adapters["b"]
    assert loader.log[-2:] == ["load b", "unload a"]
    assert (cache.loads, cache.evictions) == (4, 2)
    cache.close()
    assert sorted(loader.log[-2:]) == ["unload b", "unload c"]


def test_a_model_in_use_is_unloaded_by_its_last_user() -> None:
    loader = FakeLoader()
    cache = ModelCache(1, loader)
    a, b = cache.register(_spec("a")), cache.register(_spec("b"))
    with cache.use(a) as entry_a:
        with cache.use(b):
            assert entry_a.evicted and not loader.adapters["a"].unloaded  # still in use
        entry_a.forward({"raw": np.ones(2)})  # still usable by its current user
    assert loader.adapters["a"].unloaded
    assert loader.log == ["load a", "load b", "unload a"]


def test_concurrent_requests_for_one_model_load_it_once() -> None:
    loader = FakeLoader(delay_s=0.2)
    cache = ModelCache(2, loader)
    key = cache.register(_spec("a"))
    entries: list[Any] = []

    def use() -> None:
        with cache.use(key) as entry:
            entries.append(entry)

    run_concurrently(use, [()] * 8)
    assert loader.loads == 1
    assert len({id(e) for e in entries}) == 1


def test_forward_calls_to_one_model_are_serialised_and_models_run_in_parallel() -> None:
    loader = FakeLoader(forward_delay_s=0.05)
    cache = ModelCache(2, loader)
    keys = [cache.register(_spec(n)) for n in "ab"]

    def call(key: str) -> None:
        with cache.use(key) as entry:
            np.testing.assert_array_equal(entry.forward({"raw": np.ones(3)})["out"], 2)

    started = time.perf_counter()
    run_concurrently(call, [(keys[i % 2],) for i in range(8)])
    elapsed = time.perf_counter() - started
    assert loader.adapters["a"].max_active == 1 and loader.adapters["b"].max_active == 1
    # 4 calls per model one after the other, the two models side by side: ~0.2 s, not 0.4 s
    assert elapsed < 0.38, elapsed


def test_a_failing_load_leaves_nothing_behind_and_can_be_retried() -> None:
    class Flaky(FakeLoader):
        def __call__(self, spec: LoadSpec) -> Any:
            if self.loads == 0:
                self.loads += 1
                raise RuntimeError("disk hiccup")
            return super().__call__(spec)

    loader = Flaky()
    cache = ModelCache(1, loader)
    key = cache.register(_spec("a"))
    with pytest.raises(RuntimeError), cache.use(key):
        pass
    assert not cache.is_loaded(key)
    with cache.use(key):
        pass
    assert cache.is_loaded(key)
