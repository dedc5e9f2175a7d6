"""How the server opens the models clients name: uploaded packages and sources it resolves.

A client names a model by the sha256 of a package it uploaded, or by an http(s) URL or an id;
never by a path on the server. Every model a client names counts as fetched, whatever its
bytes: an uploaded package gets an http origin (the address it was uploaded to), so code it
brings runs only with the server's own ``allow_remote_code`` setting
(``serve --allow-remote-code``), never because a client asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bioimageio_core.adapter_loading import load_model_adapter
from bioimageio_core.errors import InputError
from bioimageio_core.loading import load_description, validate_format
from bioimageio_core.references import is_http_url
from bioimageio_core.remote.protocol import API_PREFIX, SHA256
from bioimageio_core.server.config import ServerConfig
from bioimageio_core.server.errors import ApiError
from bioimageio_core.server.models import Loaded, LoadSpec
from bioimageio_core.settings import Settings
from bioimageio_core.sources.roots import ZipRoot
from bioimageio_core.spec import ModelDescr
from bioimageio_core.testing import test_description

if TYPE_CHECKING:
    from bioimageio_core.server.store import PackageStore
    from bioimageio_core.spec import ModelDescr
    from bioimageio_core.summary import ValidationSummary

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,3}")
"""What an id may look like (``affable-shark``, ``affable-shark/1.2``, ``10.5281/zenodo.1``,
``huggingface/user/repo``): no absolute path, no ``..``, no backslash, no scheme."""


def check_devices(
    config: ServerConfig, requested: Sequence[str] | None
) -> tuple[str, ...] | None:
    """The devices to load a model on: the server's (``serve --device``) or the client's."""
    wanted = None if requested is None else tuple(requested)
    if config.devices is None or wanted is None or wanted == config.devices:
        return config.devices if wanted is None else wanted
    raise ApiError(
        422,
        "DeviceRefused",
        f"this server runs models on {', '.join(config.devices)} (serve --device); it does not "
        f"take devices {list(wanted)}",
        hint="leave out the devices (predict --device) when predicting on this server",
    )


class ModelLoader:
    """Opens, loads, tests and validates the models of :class:`LoadSpec` s."""

    def __init__(
        self, store: PackageStore, config: ServerConfig, settings: Settings, url: str
    ) -> None:
        self.store = store
        self.config = config
        self.settings = settings
        self.url = url
        """The server's address (the origin of uploaded packages)."""

    def check_reference(self, spec: LoadSpec) -> None:
        """Refuse (before any work) a package this server lacks or a source it does not open.

        Raises:
            ApiError: 400 malformed sha256, 404 unknown package, 422 a source that is neither an
                http(s) URL nor an id.
        """
        if spec.package is not None:
            if not SHA256.fullmatch(spec.package):
                raise ApiError(
                    400, "BadRequest", f"{spec.package!r} is not a sha256 (64 lower-case hex digits)"
                )
            if not self.store.has(spec.package):
                raise ApiError(
                    404,
                    "UnknownPackage",
                    f"this server stores no package {spec.package}",
                    hint=f"upload it first: PUT {API_PREFIX}/packages/{spec.package}",
                )
            return
        source = str(spec.source)
        # a path on the server is never opened for a client, whether it exists or not
        if not (is_http_url(source) or (_ID.fullmatch(source) and not Path(source).exists())):
            raise ApiError(
                422,
                "UnsupportedSource",
                f"{source!r} is neither an http(s) URL nor an id",
                hint="name the model by URL or id, or upload its package (PUT /v1/packages/…)",
                loc="source",
            )

    def _target(self, spec: LoadSpec) -> str | Path:
        return self.store.path(spec.package) if spec.package is not None else str(spec.source)

    def _origin(self, spec: LoadSpec) -> str:
        return f"{self.url}{API_PREFIX}/packages/{spec.package}"

    def description(self, spec: LoadSpec) -> ModelDescr:
        """The model description (no file checked yet: each is checked when used).

        Raises:
            ValidationError: the description is invalid.
            InputError: it is no model.
        """
        descr = load_description(self._target(spec), perform_io_checks=False)
        if not isinstance(descr, ModelDescr):
            raise InputError(
                f"{spec.label} describes a {getattr(descr, 'type', '?')}, not a model",
                hint="name the description of a model",
            )
        if spec.package is not None:  # uploaded: as untrusted as a download
            root = descr.root
            path = root.path if isinstance(root, ZipRoot) else self.store.path(spec.package)
            descr = attrs.evolve(descr, root=ZipRoot(path, origin=self._origin(spec)))
        return descr

    def load(self, spec: LoadSpec) -> Loaded:
        """Load the model for forward calls (the :class:`ModelCache` loader)."""
        descr = self.description(spec)
        adapter, weights_format = load_model_adapter(
            descr, weights_format=spec.weights_format, devices=spec.devices
        )
        return Loaded(descr=descr, adapter=adapter, weights_format=weights_format)

    def test(self, spec: LoadSpec, stop_early: bool) -> dict[str, Any]:
        """``POST /v1/test``: format validation, then the model's tests here; the summary."""
        summary = validate_format(self._target(spec), perform_io_checks=False)
        if summary.is_valid:
            summary = test_description(
                self.description(spec),
                weights_format=spec.weights_format,
                devices=spec.devices,
                stop_early=stop_early,
                expected_type="model",
            )
        return _relabel(summary, spec)

    def validate(self, spec: LoadSpec, perform_io_checks: bool) -> dict[str, Any]:
        """``POST /v1/validate``: the validation summary of the description."""
        summary = validate_format(self._target(spec), perform_io_checks=perform_io_checks)
        return _relabel(summary, spec)


def _relabel(summary: ValidationSummary, spec: LoadSpec) -> dict[str, Any]:
    """The summary as JSON, naming the source as the client did (not the server's path)."""
    summary.source = spec.label
    return summary.to_json()


__all__ = ["ModelLoader", "check_devices"]
