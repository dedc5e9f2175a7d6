"""Where descriptions and their files come from: paths, folders, zip packages, URLs, the cache.

Everything here that touches the network imports ``requests`` lazily.
"""

from bioimageio_core.references import is_http_url
from bioimageio_core.sources.cache import empty_cache, sha256_of_file
from bioimageio_core.sources.http import download
from bioimageio_core.sources.resolve import (
    YAML_NAMES,
    RawDescription,
    Source,
    check_file,
    find_yaml_name,
    open_file,
    read_description,
    source_name,
)
from bioimageio_core.sources.roots import (
    FolderRoot,
    Root,
    UrlRoot,
    ZipRoot,
    as_root,
    root_of,
    root_or_cwd,
)

__all__ = [
    "YAML_NAMES",
    "FolderRoot",
    "RawDescription",
    "Root",
    "Source",
    "UrlRoot",
    "ZipRoot",
    "as_root",
    "check_file",
    "download",
    "empty_cache",
    "find_yaml_name",
    "is_http_url",
    "open_file",
    "read_description",
    "root_of",
    "root_or_cwd",
    "sha256_of_file",
    "source_name",
]
