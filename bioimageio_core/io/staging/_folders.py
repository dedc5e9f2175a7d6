"""A folder of files (a model package) written aside and moved into place together."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from bioimageio_core.errors import OutputError
from bioimageio_core.io.staging._failures import exists_error, output_error
from bioimageio_core.io.staging._files import StagedOutput, fsync_file, publish_dir, publish_file
from bioimageio_core.io.staging._names import PathLike, remove_leftovers, temporary_path


@attrs.define(eq=False, slots=False)
class StagedFolder(StagedOutput):
    """A folder of files written together (a model package), complete or absent.

    Files are written into :attr:`path`, a working folder. :meth:`commit` renames a new folder
    into place; into an existing folder it moves the files one by one, the ``descriptions``
    (``rdf.yaml`` …) last and after removing the old ones, so a folder holding a description
    holds every file of it. :meth:`commit` (once) returns the output folder.
    """

    final: Path
    path: Path
    existing: bool = attrs.field(kw_only=True)
    overwrite: bool = attrs.field(kw_only=True)
    descriptions: tuple[str, ...] = attrs.field(kw_only=True)
    _state: str = attrs.field(default="open", init=False)

    def taken_names(self) -> set[str]:
        """Lower-case names a new file must not take: those in the working folder and, for an
        existing output folder without ``overwrite``, those in the output folder."""
        names = {n.lower() for n in os.listdir(self.path)}
        if self.existing and not self.overwrite:
            names |= {n.lower() for n in os.listdir(self.final) if n != self.path.name}
        return names

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse (unless ``overwrite``) when the output folder holds any of ``names`` or a
        description."""
        if not self.existing or self.overwrite:
            return
        wanted = list(dict.fromkeys([*self.descriptions, *names]))
        existing = [self.final / n for n in wanted if os.path.lexists(self.final / n)]
        if existing:
            raise exists_error(existing)

    def _publish(self) -> None:
        names = sorted(os.listdir(self.path))
        if self.existing:
            self.check_names(names)
            for old in self.descriptions:
                if os.path.lexists(self.final / old):
                    (self.final / old).unlink()
            ordered = [n for n in names if n not in self.descriptions]
            ordered += [n for n in names if n in self.descriptions]
            for name in ordered:
                source, target = self.path / name, self.final / name
                if source.is_dir():
                    publish_dir(source, target)
                else:
                    publish_file(source, target)
            os.rmdir(self.path)
            return
        for name in names:
            if (self.path / name).is_file():
                fsync_file(self.path / name)
        try:
            os.rename(self.path, self.final)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise exists_error([self.final]) from None
            raise

    def _remove(self) -> None:
        """The working folder goes; the output folder keeps what it held."""
        shutil.rmtree(self.path, ignore_errors=True)


def stage_folder(
    final: PathLike, *, overwrite: bool = True, descriptions: Sequence[str] = ()
) -> StagedFolder:
    """A working folder for the folder output ``final`` (see :class:`StagedFolder`).

    A new folder is staged next to ``final``; an existing one gets its working folder inside
    (hidden), so nothing is written outside it.
    """
    target = Path(final)
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(
            f"cannot write the folder {target}: a file of that name exists",
            hint="choose another output path",
        )
    existing = target.is_dir()
    try:
        if existing:
            remove_leftovers(target)
            path = temporary_path(target / target.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_leftovers(target.parent)
            path = temporary_path(target)
        os.mkdir(path, 0o777)
    except OSError as e:
        raise output_error(target, e) from e
    return StagedFolder(
        target, path, existing=existing, overwrite=overwrite, descriptions=tuple(descriptions)
    )
