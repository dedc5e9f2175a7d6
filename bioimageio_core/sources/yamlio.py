"""Safe YAML parsing of descriptions.

PyYAML's safe loader with three bounds on top: the text size, the nesting depth (checked while
composing, before Python's recursion limit is reached) and the number of values after alias
expansion. A key written twice in one mapping is an error with its field path, never
last-one-wins.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bioimageio_core.errors import SourceError
from bioimageio_core.settings import ENV_PREFIX

#: most values a description may hold once aliases (``*anchor``) are expanded
MAX_EXPANDED_VALUES = 1_000_000
#: most levels of nested mappings / lists a description may have
MAX_YAML_DEPTH = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        self.mark = mark


class _DuplicateKey(Exception):
    def __init__(self, key: object, path: str, mark: yaml.Mark, first: yaml.Mark) -> None:
        self.key = key
        self.path = path
        self.mark = mark
        self.first = first


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting bound and duplicate-key detection."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event: Any = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooDeep(event.start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        self._check_duplicate_keys(node)
        return super().construct_document(node)

    def _check_duplicate_keys(self, root: Node) -> None:
        """Walk the node tree once (aliased nodes once) and refuse a key written twice."""
        seen: set[int] = set()
        stack: list[tuple[Node, str]] = [(root, "$")]
        while stack:
            node, path = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, SequenceNode):
                stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node.value))
            elif isinstance(node, MappingNode):
                first: dict[Hashable, yaml.Mark] = {}
                for key_node, value_node in node.value:
                    if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                        stack.append((value_node, path))
                        continue
                    key = self.construct_object(key_node, deep=True)
                    child = _child_path(path, key)
                    if isinstance(key, Hashable):
                        if key in first:
                            raise _DuplicateKey(key, child, key_node.start_mark, first[key])
                        first[key] = key_node.start_mark
                    stack.append((value_node, child))


def _child_path(path: str, key: object) -> str:
    return f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]"


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; raises ``_TooDeep`` / ``_DuplicateKey`` / ``yaml.YAMLError``."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


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
        content = load_yaml(text)
    except _TooDeep as e:
        raise SourceError(
            f"{name} is nested more than {MAX_YAML_DEPTH} levels deep{_at(e.mark)}",
            hint="descriptions are never nested this deeply; check how the file was made",
        ) from None
    except _DuplicateKey as e:
        raise SourceError(
            f"{name} has the duplicate key {e.key!r} at {e.path}{_at(e.mark)}; "
            f"it was first given at line {e.first.line + 1}, column {e.first.column + 1}",
            hint="keep one of the two entries (a YAML mapping holds each key once)",
        ) from None
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


def _at(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
