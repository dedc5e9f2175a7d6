"""Descriptors of bioimage.io resource descriptions (attrs classes parsed with cattrs)."""

from bioimageio_core.spec.issues import Issue, Loc, loc_to_path

__all__ = ["Issue", "Loc", "loc_to_path"]
