"""Safe YAML parsing of descriptions (``yaml.safe_load``, size bounded)."""

from __future__ import annotations

from typing import Any

import yaml

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX


def parse_yaml_mapping(data: bytes, name: str, max_bytes: int) -> dict[str, Any]:
    """Parse YAML text that must hold a mapping at the top level.

    Raises :class:`SourceError` naming the file (and line) for text that is too large, is not
    valid YAML or is not a mapping.
    """
    if len(data) > max_bytes:
        raise SourceError(
            f"{name} is larger than {max_bytes} bytes",
            hint=f"raise {ENV_PREFIX}MAX_YAML_BYTES if the description is really this large",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{name} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    try:
        content = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise SourceError(f"{name} is not valid YAML{where}: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise SourceError(f"{name} is not valid YAML: {e}") from None
    if not isinstance(content, dict):
        raise SourceError(
            f"{name} must hold a mapping of fields at the top level (got {type(content).__name__})"
        )
    return {str(k): v for k, v in content.items()}
