"""Fixtures of the packaging tests (defined in pkg_helpers)."""

from pkg_helpers import affine_model, example_copy, use_converters

__all__ = ["affine_model", "example_copy", "use_converters"]
