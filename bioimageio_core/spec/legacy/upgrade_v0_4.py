"""Bring raw model descriptions of format 0.3.x and early 0.4.x to the 0.4.10 layout.

Moves that the later 0.4 versions made to the format: root-level architecture fields into the
``pytorch_state_dict`` entry, root-level ``dependencies`` into the weights entry, ``parent.uri``,
``config.bioimageio.nickname`` → ``id``. Works on a copy made by the caller.
"""

from __future__ import annotations

from typing import Any

from bioimageio_core.spec.legacy._common import IssueLog, move_nicknames

#: 0.3 root-level fields describing the architecture of the pytorch_state_dict weights
_ROOT_ARCHITECTURE_FIELDS = {
    "source": "architecture",
    "sha256": "architecture_sha256",
    "kwargs": "kwargs",
}
#: 0.3 root-level fields without a place in later formats
_OBSOLETE_ROOT_FIELDS = ("language", "framework")


def upgrade_to_v0_4(data: dict[str, Any], fv: tuple[int, int, int], log: IssueLog) -> None:
    """Apply the 0.3.x → 0.4.10 moves in place (``data`` is already a private copy)."""
    weights = data.get("weights")
    if not isinstance(weights, dict):
        weights = None
    if fv < (0, 4, 0):
        for key in _OBSOLETE_ROOT_FIELDS:
            data.pop(key, None)
        if weights is not None and "pytorch_script" in weights and "torchscript" not in weights:
            data["weights"] = weights = {
                ("torchscript" if k == "pytorch_script" else k): v for k, v in weights.items()
            }
            log.moved[("weights", "torchscript")] = ("weights", "pytorch_script")
        _move_root_architecture(data, weights, log)
        for kind in ("outputs",):
            for tensor in data.get(kind) or ():
                shape = tensor.get("shape") if isinstance(tensor, dict) else None
                if isinstance(shape, dict) and "reference_input" in shape:
                    shape.setdefault("reference_tensor", shape.pop("reference_input"))
    if fv < (0, 4, 1) and "dependencies" in data:
        _move_root_dependencies(data, weights, log)
    parent = data.get("parent")
    if isinstance(parent, dict) and "uri" in parent and "id" not in parent:
        uri = parent.get("uri")
        if isinstance(uri, str) and uri:
            data["parent"] = {"id": uri}
            log.warn(("parent", "uri"), f"parent given by 'uri'; read as id {uri!r}")
    move_nicknames(data)


def _move_root_architecture(
    data: dict[str, Any], weights: dict[str, Any] | None, log: IssueLog
) -> None:
    present = [k for k in _ROOT_ARCHITECTURE_FIELDS if k in data]
    if not present:
        return
    entry = weights.get("pytorch_state_dict") if weights is not None else None
    if not isinstance(entry, dict):
        for key in present:
            log.warn(
                (key,),
                f"0.3 root-level '{key}' describes pytorch_state_dict weights, "
                "which this model does not have; ignored",
            )
            data.pop(key)
        return
    for key in present:
        target = _ROOT_ARCHITECTURE_FIELDS[key]
        value = data.pop(key)
        if target in entry:
            log.warn(
                (key,),
                f"0.3 root-level '{key}' ignored: weights.pytorch_state_dict.{target} is given",
            )
        else:
            entry[target] = value
            log.moved[("weights", "pytorch_state_dict", target)] = (key,)


def _move_root_dependencies(
    data: dict[str, Any], weights: dict[str, Any] | None, log: IssueLog
) -> None:
    value = data.pop("dependencies")
    targets = [
        fmt
        for fmt in ("pytorch_state_dict", "tensorflow_saved_model_bundle")
        if weights is not None and isinstance(weights.get(fmt), dict)
    ]
    if not targets:
        log.warn(
            ("dependencies",),
            "root-level 'dependencies' belong to pytorch_state_dict or "
            "tensorflow_saved_model_bundle weights, which this model does not have; ignored",
        )
        return
    for fmt in targets:
        entry = weights[fmt] if weights is not None else {}
        if "dependencies" not in entry:
            entry["dependencies"] = value
            log.moved[("weights", fmt, "dependencies")] = ("dependencies",)
