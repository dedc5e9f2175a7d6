"""Loaded models of a server: a least-recently-used set of at most ``max_models``.

A model is loaded once and shared by every request; forward calls to one model run one at a
time (its lock), calls to different models in parallel. A model pushed out of the set is
unloaded (``adapter.unload``: framework and GPU memory freed) as soon as no request uses it.
Keys name what to load (:class:`LoadSpec`) and stay known after eviction, so a later request
loads the model again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from bioimageio_core.shapes import model_shape

if TYPE_CHECKING:
    from bioimageio_core.adapters import ModelAdapter
    from bioimageio_core.shapes import ModelShape
    from bioimageio_core.spec import ModelDescr

log = logging.getLogger("bioimageio_core.server")


@attrs.frozen
class LoadSpec:
    """What to load: an uploaded package (sha256) or a source, a weight format, devices."""

    package: str | None
    source: str | None
    weights_format: str | None
    devices: tuple[str, ...] | None

    @property
    def key(self) -> str:
        """A stable name of this spec (the ``{key}`` of the predict endpoint)."""
        text = json.dumps(attrs.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        return f"package {self.package}" if self.package is not None else str(self.source)


@attrs.frozen
class Loaded:
    """What a loader returns."""

    descr: ModelDescr
    adapter: ModelAdapter
    weights_format: str


class UnknownModelKey(KeyError):
    """No model was registered under this key."""


class ModelEntry:
    """One loaded model; ``forward`` holds its lock."""

    def __init__(self, key: str, spec: LoadSpec, loaded: Loaded) -> None:
        self.key = key
        self.spec = spec
        self.descr = loaded.descr
        self.adapter = loaded.adapter
        self.weights_format = loaded.weights_format
        self.model_spec: ModelShape = model_shape(loaded.descr)
        self.lock = threading.Lock()
        self.users = 0
        self.evicted = False
        self.calls = 0
        self.requests = 0
        self.loaded_at = time.time()

    def forward(self, arrays: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        with self.lock:
            self.calls += 1
            return self.adapter.forward(arrays)

    def forward_calls(
        self, calls: Sequence[Mapping[str, np.ndarray[Any, Any]]]
    ) -> tuple[list[dict[str, np.ndarray[Any, Any]]], float]:
        """The outputs of one request's forward calls, each run on its own (calls of other
        requests may run between them), and the seconds spent in the model."""
        with self.lock:
            self.requests += 1
        outputs = []
        seconds = 0.0
        for arrays in calls:
            started = time.perf_counter()
            outputs.append(self.forward(arrays))
            seconds += time.perf_counter() - started
        return outputs, seconds

    def unload(self) -> None:
        try:
            self.adapter.unload()
        except Exception:  # unloading must not take the server down
            log.exception("unloading model %s failed", self.key)
        else:
            log.info("unloaded model %s (%s, %s)", self.key, self.descr.name, self.spec.label)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.key,
            "name": self.descr.name,
            "weights_format": self.weights_format,
            "inputs": [{"id": t.id, "axes": list(t.axis_ids)} for t in self.model_spec.inputs],
            "outputs": [{"id": t.id, "axes": list(t.axis_ids)} for t in self.model_spec.outputs],
        }


class ModelCache:
    """The loaded models; thread safe. ``loader(spec)`` loads one model (slow; never under the
    cache's lock)."""

    def __init__(self, max_models: int, loader: Callable[[LoadSpec], Loaded]) -> None:
        self.max_models = max_models
        self._loader = loader
        self._lock = threading.Lock()
        self._known: dict[str, LoadSpec] = {}
        self._loaded: OrderedDict[str, ModelEntry] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0
        self.evictions = 0

    def register(self, spec: LoadSpec) -> str:
        """Remember ``spec`` and return its key (nothing is loaded)."""
        key = spec.key
        with self._lock:
            self._known[key] = spec
        return key

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._loaded

    @contextmanager
    def use(self, key: str) -> Iterator[ModelEntry]:
        """The loaded model of ``key`` (loading it if needed), not unloaded while in use.

        Raises:
            UnknownModelKey: ``key`` was never registered.
        """
        entry = self._acquire(key)
        try:
            yield entry
        finally:
            self._release(entry)

    def _take(self, key: str) -> ModelEntry | None:
        """The loaded entry, marked used and most recently used; call under the lock."""
        entry = self._loaded.get(key)
        if entry is not None:
            self._loaded.move_to_end(key)
            entry.users += 1
        return entry

    def _acquire(self, key: str) -> ModelEntry:
        with self._lock:
            spec = self._known.get(key)
            if spec is None:
                raise UnknownModelKey(key)
            entry = self._take(key)
            if entry is not None:
                return entry
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per key; others wait for it
            with self._lock:
                entry = self._take(key)
                if entry is not None:
                    return entry
            started = time.perf_counter()
            loaded = self._loader(spec)
            entry = ModelEntry(key, spec, loaded)
            entry.users = 1
            log.info(
                "loaded model %s (%s, %s weights, %s) in %.1f s",
                key, entry.descr.name, entry.weights_format, spec.label,
                time.perf_counter() - started,
            )
            with self._lock:
                self._loaded[key] = entry
                self.loads += 1
                idle = self._evict_over_limit()
        for victim in idle:
            victim.unload()
        return entry

    def _evict_over_limit(self) -> list[ModelEntry]:
        """Drop least recently used entries beyond ``max_models``; returns those nobody uses
        (to unload now; the others are unloaded by their last user). Call under the lock."""
        idle: list[ModelEntry] = []
        while len(self._loaded) > self.max_models:
            _, victim = self._loaded.popitem(last=False)
            victim.evicted = True
            self.evictions += 1
            log.info("evicting model %s (%s): more than %d loaded", victim.key, victim.descr.name, self.max_models)
            if victim.users == 0:
                idle.append(victim)
        return idle

    def _release(self, entry: ModelEntry) -> None:
        with self._lock:
            entry.users -= 1
            unload = entry.evicted and entry.users == 0
        if unload:
            entry.unload()

    def describe(self) -> list[dict[str, Any]]:
        """The loaded models, least recently used first."""
        with self._lock:
            entries = list(self._loaded.values())
        return [
            {**e.describe(), "source": e.spec.label, "in_use": e.users, "calls": e.calls,
             "requests": e.requests}
            for e in entries
        ]

    def close(self) -> None:
        """Unload every model (at shutdown); models in use are unloaded by their last user."""
        with self._lock:
            entries = list(self._loaded.values())
            self._loaded.clear()
            for e in entries:
                e.evicted = True
            idle = [e for e in entries if e.users == 0]
        for entry in idle:
            entry.unload()


__all__ = ["LoadSpec", "Loaded", "ModelCache", "ModelEntry", "UnknownModelKey"]
