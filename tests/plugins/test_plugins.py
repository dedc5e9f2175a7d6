"""Plugin manager: discovery, failure isolation, allow/block lists, duplicates, facade."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bioimageio_core import plugins
from bioimageio_core.errors import PluginError, UnsupportedWeightFormatError
from bioimageio_core.hookspecs import OpRegister, OpSpec, WeightFormatSpec, hookimpl
from bioimageio_core.settings import Settings

MakeDist = Callable[[str, str], str]

BUILTIN_OPS = {
    "binarize",
    "clip",
    "ensure_dtype",
    "fixed_zero_mean_unit_variance",
    "scale_linear",
    "scale_mean_variance",
    "scale_range",
    "sigmoid",
    "softmax",
    "zero_mean_unit_variance",
    "stardist_postprocessing",
    "cellpose_flow_dynamics",
    "custom",
}

FORMAT_PLUGIN = """
from bioimageio_core.hookspecs import WeightFormatSpec, hookimpl

@hookimpl
def bioimageio_weight_formats(register):
    register.add(WeightFormatSpec(
        name={name!r}, entry_class=dict, create_adapter=lambda request: None,
        is_available=lambda: {reason!r}, priority={priority}, install_hint={hint!r}))
"""


def format_plugin(name: str, reason: str | None = None, priority: int = 100, hint: str = "") -> str:
    return FORMAT_PLUGIN.format(name=name, reason=reason, priority=priority, hint=hint)


def only(*names: str) -> Settings:
    return Settings(load_plugins=names)


def test_builtin_ops_registered_through_the_hook() -> None:
    ops = plugins.processing_ops(only())
    assert set(ops) == BUILTIN_OPS
    assert all(isinstance(s, OpSpec) and s.id == k for k, s in ops.items())
    builtins = {i.name: i for i in plugins.plugin_infos(only()) if i.builtin}
    assert set(builtins) == {"builtin-ops", "builtin-image-io", "builtin-resolvers"}
    assert set(builtins["builtin-ops"].ops) == BUILTIN_OPS
    assert all(i.status == "loaded" for i in builtins.values())


def test_builtin_image_formats_and_resolvers_registered_through_the_hooks() -> None:
    from bioimageio_core.io import FORMATS

    infos = {i.name: i for i in plugins.plugin_infos(only()) if i.builtin}
    assert infos["builtin-image-io"].image_io == tuple(f.name for f in FORMATS)
    assert tuple(plugins.image_io(only()).values()) == FORMATS
    assert infos["builtin-resolvers"].source_resolvers == ("huggingface", "bioimage.io")
    # asked in priority order: the specific huggingface/ prefix before any id-like text
    assert list(plugins.source_resolvers(only())) == ["huggingface", "bioimage.io"]


def test_entry_point_discovered_with_distribution_and_version(make_dist: MakeDist) -> None:
    ep = make_dist("bioimageio-fake-fmt", format_plugin("fake_fmt"))
    settings = only(ep)
    assert set(plugins.weight_formats(settings)) == {"fake_fmt"}
    (info,) = [i for i in plugins.plugin_infos(settings) if i.name == ep]
    assert info.distribution == "bioimageio-fake-fmt"
    assert info.version.startswith("1.2.")
    assert info.weight_formats == ("fake_fmt",)
    assert info.status == "loaded" and info.error is None


def test_broken_plugins_are_reported_and_the_rest_work(make_dist: MakeDist) -> None:
    good = make_dist("bioimageio-good", format_plugin("good_fmt"))
    import_error = make_dist("bioimageio-import-error", "import not_a_real_module_xyz\n")
    hook_error = make_dist(
        "bioimageio-hook-error",
        """
        from bioimageio_core.hookspecs import WeightFormatSpec, hookimpl

        @hookimpl
        def bioimageio_weight_formats(register):
            register.add(WeightFormatSpec(name="half_registered", entry_class=dict,
                         create_adapter=lambda r: None, is_available=lambda: None))
            raise RuntimeError("framework exploded")
        """,
    )
    misspelt = make_dist(
        "bioimageio-misspelt",
        """
        from bioimageio_core.hookspecs import hookimpl

        @hookimpl
        def bioimageio_weight_format(register):
            pass
        """,
    )
    settings = only(good, import_error, hook_error, misspelt)
    assert set(plugins.weight_formats(settings)) == {"good_fmt"}
    assert BUILTIN_OPS <= set(plugins.processing_ops(settings))
    infos = {i.name: i for i in plugins.plugin_infos(settings)}
    assert infos[good].status == "loaded"
    assert infos[import_error].status == "failed"
    assert infos[import_error].distribution == "bioimageio-import-error"
    assert "not_a_real_module_xyz" in (infos[import_error].error or "")
    assert infos[hook_error].status == "failed"
    assert "framework exploded" in (infos[hook_error].error or "")
    assert infos[hook_error].weight_formats == ()  # what it added before failing is undone
    assert infos[misspelt].status == "failed"
    assert "bioimageio_weight_format" in (infos[misspelt].error or "")


def test_load_and_disable_lists(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_dist("bioimageio-plugin-a", format_plugin("fmt_a"))
    b = make_dist("bioimageio-plugin-b", format_plugin("fmt_b"))
    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", f"{a},{b}")
    monkeypatch.setenv("BIOIMAGEIO_DISABLE_PLUGINS", "bioimageio-plugin-b")  # by distribution
    assert set(plugins.weight_formats()) == {"fmt_a"}
    infos = {i.name: i for i in plugins.plugin_infos()}
    assert infos[b].status == "disabled"

    monkeypatch.setenv("BIOIMAGEIO_LOAD_PLUGINS", b)  # by entry-point name
    monkeypatch.delenv("BIOIMAGEIO_DISABLE_PLUGINS")
    assert set(plugins.weight_formats()) == {"fmt_b"}
    assert BUILTIN_OPS <= set(plugins.processing_ops())  # built-ins are always there


def test_registry_is_cached_per_settings_and_reset(make_dist: MakeDist) -> None:
    ep = make_dist("bioimageio-cached", format_plugin("cached_fmt"))
    first = plugins.get_registry(only(ep))
    assert plugins.get_registry(only(ep)) is first
    assert plugins.get_registry(only()) is not first
    plugins.reset()
    assert plugins.get_registry(only(ep)) is not first


def test_duplicate_registration_names_both_distributions(make_dist: MakeDist) -> None:
    one = make_dist("bioimageio-first-dist", format_plugin("same_fmt"))
    two = make_dist("bioimageio-second-dist", format_plugin("same_fmt"))
    infos = {i.name: i for i in plugins.plugin_infos(only(one, two))}
    assert infos[one].weight_formats == ("same_fmt",)
    assert infos[two].status == "failed"
    error = infos[two].error or ""
    assert "same_fmt" in error
    assert "bioimageio-first-dist" in error and "bioimageio-second-dist" in error


def test_duplicate_op_id_with_a_builtin(make_dist: MakeDist) -> None:
    ep = make_dist(
        "bioimageio-sigmoid-clone",
        """
        from bioimageio_core.hookspecs import OpSpec, hookimpl

        @hookimpl
        def bioimageio_processing_ops(register):
            register.add(OpSpec("sigmoid", (), lambda k, t, m, s: m[t.member_id]))
        """,
    )
    infos = {i.name: i for i in plugins.plugin_infos(only(ep))}
    assert infos[ep].status == "failed"
    assert "bioimageio-run" in (infos[ep].error or "")
    assert "bioimageio-sigmoid-clone" in (infos[ep].error or "")
    assert plugins.processing_ops(only(ep))["sigmoid"].apply is not None


def test_register_add_raises_plugin_error() -> None:
    register: plugins.Register[WeightFormatSpec] = plugins.Register("weight_format", lambda s: s.name)
    spec = WeightFormatSpec("x", dict, lambda r: None, lambda: None)  # type: ignore[arg-type,return-value]
    register.add(spec)
    with pytest.raises(PluginError, match="registered twice"):
        register.add(spec)


def test_choose_weight_format(make_dist: MakeDist) -> None:
    eps = (
        make_dist("bioimageio-fast", format_plugin("fast", priority=10)),
        make_dist("bioimageio-slow", format_plugin("slow", priority=90)),
        make_dist(
            "bioimageio-absent",
            format_plugin("absent", reason="absentlib is not installed", priority=1,
                          hint="pip install bioimageio-absent"),
        ),
    )
    s = only(*eps)
    assert plugins.choose_weight_format(["slow", "fast", "absent"], settings=s).name == "fast"
    assert plugins.choose_weight_format(["slow", "absent"], settings=s).name == "slow"
    assert plugins.choose_weight_format(["fast", "slow"], "slow", settings=s).name == "slow"
    with pytest.raises(UnsupportedWeightFormatError) as err:
        plugins.choose_weight_format(["absent", "unknown_fmt"], settings=s)
    text = str(err.value)
    assert "absent" in text and "unknown_fmt" in text
    assert "absentlib is not installed" in text
    assert "pip install bioimageio-absent" in text
    assert "bioimageio-absent" in text
    with pytest.raises(UnsupportedWeightFormatError, match="no weights in"):
        plugins.choose_weight_format(["fast"], "onnx", settings=s)


def test_spec_extensions_contain_plugin_classes_only(make_dist: MakeDist) -> None:
    ep = make_dist(
        "bioimageio-ext",
        """
        from bioimageio_core.hookspecs import OpSpec, WeightFormatSpec, hookimpl

        class ExtWeights: pass
        class ExtKwargs: pass

        @hookimpl
        def bioimageio_weight_formats(register):
            register.add(WeightFormatSpec("ext_fmt", ExtWeights, lambda r: None, lambda: None))

        @hookimpl
        def bioimageio_processing_ops(register):
            register.add(OpSpec("ext_op", (ExtKwargs,), lambda k, t, m, s: m[t.member_id]))
        """,
    )
    ext = plugins.spec_extensions(only(ep))
    assert set(ext.weight_formats) == {"ext_fmt"}
    assert ext.weight_formats["ext_fmt"].__name__ == "ExtWeights"
    assert set(ext.processing) == {"ext_op"}
    assert [c.__name__ for c in ext.processing["ext_op"]] == ["ExtKwargs"]


def test_extra_plugins_register_like_installed_ones() -> None:
    class Embedded:
        @staticmethod
        @hookimpl
        def bioimageio_processing_ops(register: OpRegister) -> None:
            register.add(OpSpec("embedded_op", (), lambda k, t, m, s: m[t.member_id]))

    registry = plugins.create_manager(only(), extra_plugins={"embedded": Embedded()})
    assert "embedded_op" in registry.ops.specs
    (info,) = [i for i in registry.infos if i.name == "embedded"]
    assert info.ops == ("embedded_op",) and info.status == "loaded"


BROKEN_CHECKS = """
from bioimageio_core.hookspecs import ConverterSpec, OpSpec, WeightFormatSpec, hookimpl

def broken():
    raise RuntimeError("probe exploded")

@hookimpl
def bioimageio_weight_formats(register):
    register.add(WeightFormatSpec("broken_fmt", dict, lambda r: None, broken))

@hookimpl
def bioimageio_processing_ops(register):
    register.add(OpSpec("broken_op", (), lambda k, t, m, s: m[t.member_id], is_available=broken))

@hookimpl
def bioimageio_weight_converters(register):
    register.add(ConverterSpec("broken_fmt", "onnx", lambda *a: None, is_available=broken))
"""


def test_an_availability_check_that_raises_is_a_reason_everywhere(make_dist: MakeDist) -> None:
    """``plugins.unavailable_reason`` is the one guarded call of ``is_available``: selection,
    op binding and the plugin listing report a raising check instead of crashing."""
    from types import SimpleNamespace

    from bioimageio_core.ops import build_ops

    s = only(make_dist("bioimageio-broken-checks", BROKEN_CHECKS))
    specs = [
        plugins.weight_formats(s)["broken_fmt"],
        plugins.processing_ops(s)["broken_op"],
        plugins.converters(s)[("broken_fmt", "onnx")],
    ]
    for spec in specs:
        reason = plugins.unavailable_reason(spec)
        assert reason is not None
        assert reason.startswith("availability check failed: RuntimeError: probe exploded (at ")
    with pytest.raises(UnsupportedWeightFormatError, match="probe exploded"):
        plugins.choose_weight_format(["broken_fmt"], settings=s)
    step = SimpleNamespace(id="broken_op", kwargs=None)
    with pytest.raises(PluginError, match="'broken_op' cannot run here: availability check failed"):
        build_ops("x", [step], ops=plugins.processing_ops(s), loc="inputs[0].preprocessing")


def test_install_hints_default_to_the_entry_points_distribution(make_dist: MakeDist) -> None:
    ep = make_dist(
        "bioimageio-hinted",
        """
        from bioimageio_core.hookspecs import ConverterSpec, OpSpec, WeightFormatSpec, hookimpl

        @hookimpl
        def bioimageio_weight_formats(register):
            register.add(WeightFormatSpec("plain_fmt", dict, lambda r: None, lambda: None))
            register.add(WeightFormatSpec("own_fmt", dict, lambda r: None, lambda: None,
                                          install_hint="pip install own-hint"))

        @hookimpl
        def bioimageio_processing_ops(register):
            register.add(OpSpec("plain_op", (), lambda k, t, m, s: m[t.member_id]))

        @hookimpl
        def bioimageio_weight_converters(register):
            register.add(ConverterSpec("plain_fmt", "own_fmt", lambda *a: None))
        """,
    )
    s = only(ep)
    formats = plugins.weight_formats(s)
    assert formats["plain_fmt"].install_hint == "pip install bioimageio-hinted"
    assert formats["own_fmt"].install_hint == "pip install own-hint"
    assert plugins.processing_ops(s)["plain_op"].install_hint == "pip install bioimageio-hinted"
    assert plugins.converters(s)[("plain_fmt", "own_fmt")].install_hint == (
        "pip install bioimageio-hinted"
    )
    assert plugins.install_hint_for("plain_fmt", s) == "pip install bioimageio-hinted"
    # built-in ops come with the core: no hint is made up for them
    assert plugins.processing_ops(s)["sigmoid"].install_hint == ""
