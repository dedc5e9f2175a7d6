"""add_weights works on a local package copy; code in it stays as untrusted as the original."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pkg_helpers import UseConverters, affine_converter, affine_verifier

from bioimageio_core.consent import CodeOrigin, code_origin
from bioimageio_core.conversion import add_weights
from bioimageio_core.hookspecs import ConverterSpec
from bioimageio_core.spec import ModelDescr


def _recording(seen: list[CodeOrigin]) -> ConverterSpec:
    convert = affine_converter("onnx")

    def recording(
        model: ModelDescr, source: str, output_path: Path, options: Mapping[str, Any]
    ) -> Any:
        seen.append(code_origin(model.root, "affine.npy"))
        return convert(model, source, output_path, options)

    return ConverterSpec("keras_hdf5", "onnx", recording)


def test_the_copy_of_a_fetched_model_keeps_its_origin(
    affine_model: Path, tmp_path: Path, http_server: Any, use_converters: UseConverters
) -> None:
    for path in affine_model.parent.iterdir():
        shutil.copy(path, http_server.root / path.name)
    seen: list[CodeOrigin] = []
    use_converters(_recording(seen))
    url = http_server.url("rdf.yaml")
    report = add_weights(url, tmp_path / "out", verify=affine_verifier)
    assert [r.status for r in report.results] == ["added"]
    (origin,) = seen
    assert not origin.trusted
    # the conversion runs in the output's working folder (moved to out/ when done)
    prefix, _, rest = origin.where.partition(" in ")
    folder, _, copy_of = rest.partition(" (a local copy of ")
    assert prefix == "affine.npy" and copy_of == f"{http_server.base_url})"
    assert Path(folder).parent == tmp_path.resolve() and Path(folder).name.endswith("out")


def test_the_copy_of_a_local_model_is_local(
    affine_model: Path, tmp_path: Path, use_converters: UseConverters
) -> None:
    seen: list[CodeOrigin] = []
    use_converters(_recording(seen))
    add_weights(affine_model, tmp_path / "out", verify=affine_verifier)
    assert [o.trusted for o in seen] == [True]
