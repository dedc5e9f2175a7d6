"""Safe YAML parsing of descriptions (``yaml.safe_load``; size bounded, also after alias expansion)."""

from __future__ import annotations

from typing import Any

import yaml

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX

#: most values a description may hold once aliases (``*anchor``) are expanded
MAX_EXPANDED_VALUES = 1_000_000


def expanded_size(value: Any) -> int:
    """Number of values in ``value`` with shared (aliased) containers counted at every use.

    Computed without expanding anything; raises ``ValueError`` for a recursive structure.
    """
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        key = id(item)
        if key in memo:
            return memo[key]
        if key in active:
            raise ValueError("a value contains itself (recursive alias)")
        active.add(key)
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        total = 1 + sum(size(child) for child in children)
        active.discard(key)
        memo[key] = total
        return total

    return size(value)


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
    try:
        values = expanded_size(content)
    except (ValueError, RecursionError) as e:
        raise SourceError(f"{name} cannot be used: {e}") from None
    if values > MAX_EXPANDED_VALUES:
        raise SourceError(
            f"{name} expands to more than {MAX_EXPANDED_VALUES} values through aliases "
            "(*anchor references)",
            hint="write the description without deeply nested aliases",
        )
    if not isinstance(content, dict):
        raise SourceError(
            f"{name} must hold a mapping of fields at the top level (got {type(content).__name__})"
        )
    return {str(k): v for k, v in content.items()}
