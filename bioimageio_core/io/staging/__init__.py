"""Outputs are complete or absent: every result bioimageio-run writes goes through here.

A writer never writes to the output path itself:

1. :func:`stage` reserves a temporary name next to the output (in the same folder, so that the
   last step is a rename, not a copy): ``.tmp-<host>-<pid>-<random>-<output name>``. The name
   ends with the output's name, so format libraries see the suffix they expect.
2. The writer fills the temporary file (or folder: zarr stores, package folders).
3. :meth:`Staged.commit` flushes the file to disk, gives it the permissions of the file it
   replaces (a new file keeps those the user's umask gave it) and renames it to the output path
   in one step. On any error :meth:`Staged.discard` removes the temporary data, and the output
   path keeps what it held before.

Stores (HDF5 datasets, zarr arrays) carry the attribute ``bioimageio_run_complete``: False from
their creation, True once every block is written (:func:`mark_incomplete`,
:func:`mark_complete`). Readers refuse a store marked incomplete (:func:`check_complete`). This
matters where a store is written in place (an array added to an existing zarr store); a dataset
added to an existing HDF5 file is written into a copy of the file, because HDF5 files can be
left unreadable by a write that fails half way.

A killed process cannot clean up after itself: the next write into the same folder removes the
temporary data of writers that no longer run on this host and says so with an
:class:`OutputNotice` warning (:func:`remove_leftovers`). A run that resumes such an output takes
the leftover over instead (:func:`adopt`: renamed to a temporary name of its own).
"""

from bioimageio_core.io.staging._failures import (
    OVERWRITE_HINT,
    exists_error,
    output_error,
    refuse_existing,
    write_errno,
)
from bioimageio_core.io.staging._files import (
    Staged,
    adopt,
    copy_file,
    preallocate,
    stage,
    staged_file,
    write_bytes,
    write_text,
)
from bioimageio_core.io.staging._folders import StagedFolder, stage_folder
from bioimageio_core.io.staging._markers import (
    COMPLETE_ATTR,
    WRITER_ATTR,
    check_complete,
    check_not_temporary,
    incomplete_error,
    incomplete_writer,
    mark_complete,
    mark_incomplete,
)
from bioimageio_core.io.staging._names import (
    TEMP_PREFIX,
    OutputNotice,
    TemporaryName,
    final_path,
    host_tag,
    is_temporary,
    leftovers_of,
    parse_temporary_name,
    remove_leftovers,
    remove_tree,
    temporary_path,
    writer_id,
    writer_is_gone,
)

__all__ = [
    "COMPLETE_ATTR",
    "OVERWRITE_HINT",
    "TEMP_PREFIX",
    "WRITER_ATTR",
    "OutputNotice",
    "Staged",
    "StagedFolder",
    "TemporaryName",
    "adopt",
    "check_complete",
    "check_not_temporary",
    "copy_file",
    "exists_error",
    "final_path",
    "host_tag",
    "incomplete_error",
    "incomplete_writer",
    "is_temporary",
    "leftovers_of",
    "mark_complete",
    "mark_incomplete",
    "output_error",
    "parse_temporary_name",
    "preallocate",
    "refuse_existing",
    "remove_leftovers",
    "remove_tree",
    "stage",
    "stage_folder",
    "staged_file",
    "temporary_path",
    "write_bytes",
    "write_errno",
    "write_text",
    "writer_id",
    "writer_is_gone",
]
