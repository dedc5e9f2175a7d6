"""Testing a plugin: test models, plugin checks and the backend conformance suite.

Import it from tests (it imports pytest and the command line)::

    from bioimageio_core.plugin.testing import BackendConformance, ModelDef, TensorDef, WeightsDef

* **Test models** — one definition written as a 0.5 or an equivalent 0.4 description:
  :class:`ModelDef` of :class:`TensorDef`\\ s (axis letters, test array, :class:`Param`\\ eterized
  or :class:`Ref`\\ erenced sizes, halo) and :class:`WeightsDef`\\ s; :func:`model_description`
  (the raw dict), :func:`write_model` (files), :func:`build_model` (a ``ModelDescr`` without
  IO), :func:`make_request` (what ``create_adapter`` receives), :func:`file_entry`, :func:`axes`.
* **Plugin checks** — :func:`checked_weight_formats` (what a plugin module registers, well
  formed), :func:`registered_converters`,
  :func:`only_plugins` (the core sees just these plugins), :func:`assert_import_is_light`, :func:`check_entry_point`.
* **The command line** — :func:`run_cli`, :func:`run_test` (exit code and JSON summary),
  :func:`assert_passed`, :func:`assert_failed_reproduction`, :func:`predict_whole_and_tiled`.
* **Servers on 127.0.0.1** — :func:`serve_folder` (a model opened from a URL),
  :class:`LocalServer` and :class:`MiniCollection` (a bioimage.io collection for ids),
  :class:`ServerProcess` (``bioimageio-run serve`` in a subprocess; needs the ``server`` extra).
* **Comparing outputs** — :func:`compare_arrays` and :func:`get_tolerance`, as model tests do.
* **The conformance suite** — :class:`BackendConformance`: subclass it with a model builder and
  a direct run of the framework, and the whole end-to-end battery runs for the backend;
  :func:`tiled_model`, :func:`multi_model` and :func:`scaled_model` describe the battery's
  models given the arrays and weights a backend computed.
"""

from bioimageio_core.collection_testing import LocalServer, MiniCollection
from bioimageio_core.plugin.testing.battery_models import multi_model, scaled_model, tiled_model
from bioimageio_core.plugin.testing.checks import (
    ListRegister,
    assert_import_is_light,
    check_entry_point,
    check_weight_format_spec,
    checked_weight_formats,
    only_plugins,
    registered_converters,
    registered_weight_formats,
)
from bioimageio_core.plugin.testing.cli import (
    LargePrediction,
    assert_failed_reproduction,
    assert_passed,
    predict_whole_and_tiled,
    run_cli,
    run_test,
    serve_folder,
    warnings_of,
)
from bioimageio_core.plugin.testing.conformance import Arrays, BackendConformance, Built
from bioimageio_core.plugin.testing.models import (
    FORMAT_VERSION,
    FORMAT_VERSION_04,
    InvalidTestDescription,
    ModelDef,
    Param,
    Ref,
    TensorDef,
    Version,
    WeightsDef,
    axes,
    build_model,
    description_path,
    file_entry,
    make_request,
    model_description,
    sha256_of,
    write_model,
)
from bioimageio_core.server.testing import ServerProcess
from bioimageio_core.testing import compare_arrays, get_tolerance

__all__ = [
    "FORMAT_VERSION",
    "FORMAT_VERSION_04",
    "Arrays",
    "BackendConformance",
    "Built",
    "InvalidTestDescription",
    "LargePrediction",
    "ListRegister",
    "LocalServer",
    "MiniCollection",
    "ServerProcess",
    "ModelDef",
    "Param",
    "Ref",
    "TensorDef",
    "Version",
    "WeightsDef",
    "assert_failed_reproduction",
    "assert_import_is_light",
    "assert_passed",
    "axes",
    "build_model",
    "check_entry_point",
    "check_weight_format_spec",
    "checked_weight_formats",
    "compare_arrays",
    "description_path",
    "file_entry",
    "get_tolerance",
    "make_request",
    "model_description",
    "multi_model",
    "only_plugins",
    "predict_whole_and_tiled",
    "registered_converters",
    "registered_weight_formats",
    "run_cli",
    "run_test",
    "scaled_model",
    "serve_folder",
    "sha256_of",
    "tiled_model",
    "warnings_of",
    "write_model",
]
