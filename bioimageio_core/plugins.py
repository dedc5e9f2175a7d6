"""Plugin manager, registry and typed facade.

The core never calls ``pm.hook`` directly: it asks this module, e.g. :func:`weight_formats` or
:func:`processing_ops`. The manager is built lazily, once per plugin settings
(``BIOIMAGEIO_LOAD_PLUGINS`` / ``BIOIMAGEIO_DISABLE_PLUGINS``), and :func:`reset` drops it.

Loading is failure-isolated: entry points of group ``bioimageio_core`` are loaded one by one, and
every plugin's hook implementations are called one by one; a plugin that fails to import, raises in
a hook or registers a name another plugin already registered is reported in :func:`plugin_infos`
(name, distribution, error) and the rest still work.
"""

from __future__ import annotations

import importlib.metadata
import threading
import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, Generic, Literal, NoReturn, TypeVar

import attrs
import pluggy

from bioimageio_core import hookspecs
from bioimageio_core.errors import PluginError, UnsupportedWeightFormatError
from bioimageio_core.hookspecs import (
    ConverterSpec,
    ImageIOSpec,
    OpSpec,
    SourceResolverSpec,
    WeightFormatSpec,
)
from bioimageio_core.settings import Settings, get_settings
from bioimageio_core.spec import SpecExtensions

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_DISTRIBUTION = "bioimageio-run"
"""Distribution name reported for the built-in plugins (the core itself)."""
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin-ops", "bioimageio_core.ops.builtin"),
    ("builtin-image-io", "bioimageio_core.io.builtin"),
    ("builtin-resolvers", "bioimageio_core.sources.ids"),
)
"""(name, module) of the default plugins, registered through the same hooks as third parties."""

Kind = Literal["weight_format", "op", "converter", "source_resolver", "image_io"]
_T = TypeVar("_T")


@attrs.frozen
class PluginInfo:
    """What one plugin is and what it provides (for ``bioimageio-run plugins``)."""

    name: str
    """Entry-point name (or the built-in plugin's name)."""
    distribution: str
    version: str
    module: str
    status: Literal["loaded", "failed", "disabled"]
    error: str | None = None
    """Why the plugin (or one of its hooks) failed; None when it works."""
    weight_formats: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    converters: tuple[str, ...] = ()
    """``"source->target"`` per converter."""
    source_resolvers: tuple[str, ...] = ()
    image_io: tuple[str, ...] = ()
    builtin: bool = False


@attrs.frozen
class _Owner:
    name: str
    distribution: str
    installed: bool = False
    """Found through an entry point of an installed distribution (``pip install`` gets it)."""

    def __str__(self) -> str:
        return f"plugin {self.name!r} (distribution {self.distribution!r})"


class Register(Generic[_T]):
    """Collects the specs of one kind; rejects a key registered twice, naming both owners.

    ``claims`` gives further keys a spec takes exclusively (e.g. the file suffixes of a format):
    a second spec claiming one of them is rejected the same way.
    """

    def __init__(
        self,
        kind: Kind,
        key: Callable[[_T], Hashable],
        claims: Callable[[_T], Iterable[Hashable]] | None = None,
        claim_noun: str = "",
    ) -> None:
        self.kind = kind
        self._key = key
        self._claims = claims
        self._claim_noun = claim_noun
        self.specs: dict[Hashable, _T] = {}
        self.owners: dict[Hashable, _Owner] = {}
        self.claimed: dict[Hashable, Hashable] = {}
        """claim (e.g. a suffix) -> key of the spec holding it"""
        self._current: _Owner | None = None

    def add(self, spec: _T) -> None:
        owner = self._current or _Owner("<direct>", "<unknown>")
        if owner.installed and getattr(spec, "install_hint", None) == "":
            # the hint defaults to the distribution whose entry point registered the spec
            spec = attrs.evolve(spec, install_hint=f"pip install {owner.distribution}")  # type: ignore[misc]
        key = self._key(spec)
        if key in self.specs:
            self._twice(f"{self.kind.replace('_', ' ')} {_key_text(key)!r}", self.owners[key], owner)
        claims = tuple(dict.fromkeys(self._claims(spec))) if self._claims else ()
        for claim in claims:
            if claim in self.claimed:
                holder = self.claimed[claim]
                self._twice(
                    f"{self._claim_noun} {claim!r} (of {_key_text(holder)!r} and of "
                    f"{_key_text(key)!r})",
                    self.owners[holder],
                    owner,
                )
        self.specs[key] = spec
        self.owners[key] = owner
        for claim in claims:
            self.claimed[claim] = key

    def _twice(self, what: str, first: _Owner, second: _Owner) -> NoReturn:
        raise PluginError(
            f"{what} is registered twice: by {first} and by {second}",
            hint="uninstall one of the two distributions, or disable one plugin with "
            "BIOIMAGEIO_DISABLE_PLUGINS=<plugin name>",
        )

    def _call(self, owner: _Owner, function: Callable[..., object]) -> None:
        """Call one hook implementation; on error, undo what it added and re-raise."""
        before = set(self.specs)
        self._current = owner
        try:
            function(register=self)
        except BaseException:
            added = set(self.specs) - before
            for key in added:
                del self.specs[key]
                del self.owners[key]
            for claim in [c for c, k in self.claimed.items() if k in added]:
                del self.claimed[claim]
            raise
        finally:
            self._current = None

    def keys_of(self, owner_name: str) -> tuple[str, ...]:
        return tuple(_key_text(k) for k, o in self.owners.items() if o.name == owner_name)


def _key_text(key: Hashable) -> str:
    if isinstance(key, tuple):
        return "->".join(str(k) for k in key)
    return str(key)


@attrs.frozen
class _Loaded:
    name: str
    distribution: str
    version: str
    module: str
    plugin: ModuleType | None
    status: Literal["loaded", "failed", "disabled"]
    error: str | None = None
    builtin: bool = False
    from_entry_point: bool = False


class PluginRegistry:
    """Everything the loaded plugins registered, with who registered what."""

    def __init__(self, manager: pluggy.PluginManager, loaded: Sequence[_Loaded]) -> None:
        self.manager = manager
        self.weight_formats: Register[WeightFormatSpec[Any]] = Register("weight_format", lambda s: s.name)
        self.ops: Register[OpSpec] = Register("op", lambda s: s.id)
        self.converters: Register[ConverterSpec] = Register(
            "converter", lambda s: (s.source_format, s.target_format)
        )
        self.source_resolvers: Register[SourceResolverSpec] = Register(
            "source_resolver", lambda s: s.name
        )
        self.image_io: Register[ImageIOSpec] = Register(
            "image_io", lambda s: s.name, lambda s: s.suffixes, "file suffix"
        )
        errors: dict[str, list[str]] = {}
        owners = {id(x.plugin): x for x in loaded if x.plugin is not None}
        hooks: list[tuple[str, Register[Any]]] = [
            ("bioimageio_weight_formats", self.weight_formats),
            ("bioimageio_processing_ops", self.ops),
            ("bioimageio_weight_converters", self.converters),
            ("bioimageio_source_resolvers", self.source_resolvers),
            ("bioimageio_image_io", self.image_io),
        ]
        for hook_name, register in hooks:
            caller = getattr(manager.hook, hook_name)
            # get_hookimpls() lists implementations in registration order: built-ins first
            for impl in caller.get_hookimpls():
                info = owners.get(id(impl.plugin))
                owner = _Owner(
                    info.name if info else impl.plugin_name,
                    info.distribution if info else "<unknown>",
                    installed=info is not None and info.from_entry_point,
                )
                try:
                    register._call(owner, impl.function)
                except Exception as e:  # a broken plugin must not break the rest
                    errors.setdefault(owner.name, []).append(f"{hook_name}: {_describe(e)}")
        self._infos = tuple(
            PluginInfo(
                name=x.name,
                distribution=x.distribution,
                version=x.version,
                module=x.module,
                status="failed" if x.status == "loaded" and x.name in errors else x.status,
                error="; ".join(errors[x.name]) if x.name in errors else x.error,
                weight_formats=self.weight_formats.keys_of(x.name),
                ops=self.ops.keys_of(x.name),
                converters=self.converters.keys_of(x.name),
                source_resolvers=self.source_resolvers.keys_of(x.name),
                image_io=self.image_io.keys_of(x.name),
                builtin=x.builtin,
            )
            for x in loaded
        )

    @property
    def infos(self) -> tuple[PluginInfo, ...]:
        return self._infos

    def distribution_of(self, kind: Kind, key: Hashable) -> str | None:
        registers: dict[str, Register[Any]] = {
            "weight_format": self.weight_formats,
            "op": self.ops,
            "converter": self.converters,
            "source_resolver": self.source_resolvers,
            "image_io": self.image_io,
        }
        register = registers[kind]
        owner = register.owners.get(key)
        return owner.distribution if owner else None


def _describe(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def _selected(name: str, distribution: str, settings: Settings) -> bool:
    names = {name, distribution}
    if settings.load_plugins is not None and not names & set(settings.load_plugins):
        return False
    return not names & set(settings.disable_plugins)


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def create_manager(
    settings: Settings | None = None,
    *,
    extra_plugins: Mapping[str, ModuleType | object] | None = None,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> PluginRegistry:
    """Build a plugin manager and collect what every plugin registers.

    ``extra_plugins`` (name → module or object with hook implementations) are registered after
    the built-ins and entry points, as if they came from a distribution of that name (for tests
    and for embedding applications). ``entry_points`` replaces the installed entry points.
    """
    settings = settings or get_settings()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    loaded: list[_Loaded] = []

    for name, module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=name)
        loaded.append(
            _Loaded(name, BUILTIN_DISTRIBUTION, _version(BUILTIN_DISTRIBUTION), module_name,
                    module, "loaded", builtin=True)
        )
    # a misspelt hook implementation in the core is a bug: fail loudly
    pm.check_pending()

    for ep in _entry_points() if entry_points is None else entry_points:
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        version = ep.dist.version if ep.dist is not None else "?"
        if not _selected(ep.name, dist, settings):
            loaded.append(_Loaded(ep.name, dist, version, ep.value, None, "disabled"))
            continue
        if pm.get_plugin(ep.name) is not None:
            loaded.append(
                _Loaded(ep.name, dist, version, ep.value, None, "failed",
                        f"a plugin named {ep.name!r} is already registered")
            )
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            pm.check_pending()
        except Exception as e:  # report and go on with the other plugins
            try:
                if pm.get_plugin(ep.name) is not None:
                    pm.unregister(name=ep.name)
            finally:
                loaded.append(_Loaded(ep.name, dist, version, ep.value, None, "failed", _describe(e)))
            continue
        loaded.append(
            _Loaded(ep.name, dist, version, ep.value, plugin, "loaded",
                    from_entry_point=ep.dist is not None)
        )

    for name, plugin in (extra_plugins or {}).items():
        module_name = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            pm.register(plugin, name=name)
            pm.check_pending()
        except Exception as e:
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
            loaded.append(_Loaded(name, name, "?", module_name, None, "failed", _describe(e)))
            continue
        loaded.append(_Loaded(name, name, "?", module_name, plugin, "loaded"))  # type: ignore[arg-type]

    return PluginRegistry(pm, loaded)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        from bioimageio_core._version import __version__

        return __version__


_lock = threading.Lock()
_cache: dict[tuple[tuple[str, ...] | None, tuple[str, ...]], PluginRegistry] = {}


def get_registry(settings: Settings | None = None) -> PluginRegistry:
    """The registry for the current plugin settings (built on first use, then cached)."""
    settings = settings or get_settings()
    key = (settings.load_plugins, settings.disable_plugins)
    with _lock:
        registry = _cache.get(key)
        if registry is None:
            registry = _cache[key] = create_manager(settings)
        return registry


def reset() -> None:
    """Forget every built registry (the next call loads the plugins again)."""
    with _lock:
        _cache.clear()


# ---------------------------------------------------------------------------------------------
# typed facade


def weight_formats(settings: Settings | None = None) -> dict[str, WeightFormatSpec[Any]]:
    """Registered weight formats by name."""
    return {str(k): v for k, v in get_registry(settings).weight_formats.specs.items()}


def processing_ops(settings: Settings | None = None) -> dict[str, OpSpec]:
    """Registered processing ops by id (built-ins included)."""
    return {str(k): v for k, v in get_registry(settings).ops.specs.items()}


def converters(settings: Settings | None = None) -> dict[tuple[str, str], ConverterSpec]:
    """Registered weight converters by (source format, target format)."""
    return {(s.source_format, s.target_format): s for s in get_registry(settings).converters.specs.values()}


def source_resolvers(settings: Settings | None = None) -> dict[str, SourceResolverSpec]:
    """Registered source resolvers by name, in the order they are asked (``priority``, then
    registration: built-ins first)."""
    specs = [(str(k), v) for k, v in get_registry(settings).source_resolvers.specs.items()]
    return dict(sorted(specs, key=lambda item: item[1].priority))


def image_io(settings: Settings | None = None) -> dict[str, ImageIOSpec]:
    """Registered tensor file formats by name (built-ins first); each suffix belongs to one."""
    return {str(k): v for k, v in get_registry(settings).image_io.specs.items()}


def plugin_infos(settings: Settings | None = None) -> tuple[PluginInfo, ...]:
    """Every plugin found (built-in, loaded, failed or disabled) and what it provides."""
    return get_registry(settings).infos


def spec_extensions(settings: Settings | None = None) -> SpecExtensions:
    """Weights-entry classes and op kwargs classes contributed by non-built-in plugins.

    Returns a ``bioimageio_core.spec.SpecExtensions`` to pass to ``build_description`` so that a
    plugin's weight format or op parses like a built-in one.
    """
    registry = get_registry(settings)
    builtin = {x.name for x in registry.infos if x.builtin}
    formats = {
        str(k): s.entry_class
        for k, s in registry.weight_formats.specs.items()
        if registry.weight_formats.owners[k].name not in builtin
    }
    processing = {
        str(k): s.kwargs_classes
        for k, s in registry.ops.specs.items()
        if registry.ops.owners[k].name not in builtin
    }
    return SpecExtensions(weight_formats=formats, processing=processing)


# ---------------------------------------------------------------------------------------------
# availability


def unavailable_reason(spec: WeightFormatSpec[Any] | OpSpec | ConverterSpec) -> str | None:
    """Why ``spec`` cannot run here, None when it can: its ``is_available()``, guarded.

    The one place the core asks a plugin's availability check: a check that raises is reported
    as the reason (with the exception and where it was raised), never propagated, so one broken
    plugin cannot stop model selection, testing, listing or a server's info.
    """
    try:
        return spec.is_available()
    except Exception as e:  # an availability check must not break its caller
        return f"availability check failed: {_describe(e)}"


# ---------------------------------------------------------------------------------------------
# weight-format choice


KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "onnx": "bioimageio-run-onnx",
    "pytorch_state_dict": "bioimageio-run-torch",
    "torchscript": "bioimageio-run-torch",
    "tensorflow_saved_model_bundle": "bioimageio-run-tensorflow",
    "keras_hdf5": "bioimageio-run-keras",
    "keras_v3": "bioimageio-run-keras",
}
"""The plugin distribution that runs each standard weight format (for install hints when no
installed plugin provides a format)."""


def install_hint_for(weight_format: str, settings: Settings | None = None) -> str:
    """What to install to run ``weight_format``: the install hint of the plugin that registered
    it (by default ``pip install <its distribution>``), else the distribution known to run that
    standard format, else a generic hint."""
    spec = get_registry(settings).weight_formats.specs.get(weight_format)
    if spec is not None and spec.install_hint:
        return spec.install_hint
    dist = KNOWN_DISTRIBUTIONS.get(weight_format)
    if dist is None:
        return f"install a plugin distribution that provides the {weight_format!r} weight format"
    return f"pip install {dist} (from this repository: plugins/{dist.rsplit('-', 1)[-1]})"


def choose_weight_format(
    present: Iterable[str],
    preferred: str | Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
) -> WeightFormatSpec[Any]:
    """Pick the weight format to run among the formats a model provides (``present``).

    ``preferred`` is the user's choice (a format name, or names in order of preference); when it
    is None, the usable format with the lowest ``priority`` wins. A format is usable when a
    plugin registered it and its ``is_available()`` returns None.

    Raises:
        UnsupportedWeightFormatError: no wanted format is usable; the message lists the formats
            present, why each cannot run, and what to install.
    """
    registry = get_registry(settings)
    specs = registry.weight_formats.specs
    present = tuple(dict.fromkeys(present))
    if isinstance(preferred, str):
        preferred = (preferred,)
    if preferred:
        missing = [f for f in preferred if f not in present]
        if len(missing) == len(preferred):
            raise UnsupportedWeightFormatError(
                f"the model has no weights in {_names(preferred)}; it provides {_names(present)}",
                hint=f"choose one of {_names(present)}",
            )
        candidates = [f for f in preferred if f in present]
    else:
        candidates = sorted(
            (f for f in present if f in specs), key=lambda f: (specs[f].priority, present.index(f))
        )
    reasons: dict[str, str] = {}
    for name in candidates:
        spec = specs.get(name)
        if spec is None:
            continue
        reason = unavailable_reason(spec)
        if reason is None:
            return spec
        reasons[name] = reason
    lines = []
    hints = []
    for name in candidates if preferred else present:
        spec = specs.get(name)
        if spec is None:
            lines.append(
                f"{name}: no installed plugin provides this format "
                f"(it is run by {KNOWN_DISTRIBUTIONS.get(name, 'a third-party plugin')})"
            )
            hints.append(install_hint_for(name))
        else:
            dist = registry.distribution_of("weight_format", name)
            lines.append(f"{name}: {reasons.get(name, 'not usable')} (plugin distribution {dist})")
            if spec.install_hint:
                hints.append(spec.install_hint)
    default_hint = "install the plugin distribution for one of these formats (see `bioimageio-run plugins`)"
    raise UnsupportedWeightFormatError(
        f"no usable weight format among {_names(candidates if preferred else present)}:\n    "
        + "\n    ".join(lines),
        hint="; ".join(dict.fromkeys(hints)) or default_hint,
    )


def _names(names: Iterable[str]) -> str:
    return ", ".join(names) or "(none)"
