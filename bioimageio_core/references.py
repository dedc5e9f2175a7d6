"""What a file reference says by itself, read as text (no IO).

A file reference is the string a description writes for a file: a path relative to the
description's root, or an http(s) URL. Every module that asks one of these questions asks it here:

* :func:`is_http_url`: can it be downloaded as it stands (an absolute http(s) URL)?
* :func:`is_remote_reference`: could it name something that is not local? The security question
  behind :mod:`bioimageio_core.consent`; deliberately broader than :func:`is_http_url`, so that a
  scheme nobody here downloads (``ftp:``, ``s3:``) still counts as remote, never as trusted.
* :func:`file_name` / :func:`file_suffix`: the name of the file it points at, for checks of the
  kind of file and for naming local copies.
* :func:`reference_problem`: could it leave the description's root? Validation reports it at the
  field; :func:`bioimageio_core.sources.open_file` refuses to open such a reference.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

_HTTP_SCHEMES = ("http", "https")
_ZENODO_FILE_API_END = "content"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_DRIVE = re.compile(r"[A-Za-z]:")


def _split(reference: str) -> SplitResult | None:
    try:
        return urlsplit(reference)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 host
        return None


def is_http_url(reference: str) -> bool:
    """Whether ``reference`` is an absolute http(s) URL (scheme in any case)."""
    split = _split(reference)
    return split is not None and split.scheme in _HTTP_SCHEMES


def is_remote_reference(reference: str) -> bool:
    """Whether ``reference`` may name a remote resource: any URL scheme but ``file:``, and
    anything that cannot be parsed as a URL at all.

    A Windows drive (``C:\\\\models\\\\a.py``) is local: its "scheme" is one letter.
    """
    split = _split(reference)
    return split is None or (len(split.scheme) > 1 and split.scheme != "file")


def file_name(reference: str) -> str:
    """The name of the file ``reference`` points at; ``""`` when it names none.

    A query or fragment is not part of the name, nor are empty and ``.`` segments; ``\\`` counts
    as ``/``. An http(s) URL of Zenodo's file API (``…/files/weights.pt/content``) names its file
    in the segment before ``content``; for a local path ``content`` is just a name.
    """
    url = is_http_url(reference)
    if url:
        path = urlsplit(reference).path
    else:
        path = reference.replace("\\", "/").split("?", 1)[0].split("#", 1)[0]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return ""
    if url and len(parts) >= 2 and parts[-1] == _ZENODO_FILE_API_END:
        return parts[-2]
    return parts[-1]


def file_suffix(reference: str) -> str:
    """The lower-case suffix (with its dot) of :func:`file_name`; ``""`` when it has none.

    Only the last suffix counts: ``weights.onnx.data`` -> ``.data``.
    """
    name = file_name(reference)
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` cannot name a file of a description, or None when it can.

    A file reference is an http(s) URL (to any host) or a relative path that stays inside the
    description's root (its folder, zip package or URL folder): ``/`` between folders, no ``..``
    segment, not absolute, no backslash, no other URL scheme (``file:``, ``ftp://`` …), no
    control character, no %-encoded dot, slash or backslash that would form any of these.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in reference):
        return "contains a control character"
    if _split(reference) is None:
        return "cannot be read as a URL or a path (an unclosed '[' in a host name?)"
    if is_http_url(reference):
        if not urlsplit(reference).netloc:
            return "is an http(s) URL without a host"
        return None
    for text, decoded in ((reference, ""), (unquote(reference), " once %-decoded")):
        if "\\" in text:
            return f"contains a backslash{decoded}; write '/' between folders"
        scheme = _SCHEME.match(text)
        if scheme and (scheme.group(1).lower() == "file" or text[scheme.end() :].startswith("//")):
            return f"is a {scheme.group(1)}: URL{decoded}; only http(s) URLs are allowed"
        if text.startswith("/") or _DRIVE.match(text):
            return f"is an absolute path{decoded}"
        if ".." in text.split("/"):
            return f"goes up a folder with '..'{decoded}"
    return None
