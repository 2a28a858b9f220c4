"""Sort classified images into DEST/<label>/ by copy or symlink; originals are never moved or deleted."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from pathlib import Path

from imgclf.results import Row

UNCERTAIN = "_uncertain"
_UNSAFE = re.compile(r"[^\w.-]+")


def folder_name(label: str) -> str:
    """A label as one safe path component: word characters, dots and dashes; spaces and others become '_'."""
    name = _UNSAFE.sub("_", label.strip()).strip("._")[:100]
    return name or "_unlabelled"


class Organizer:
    def __init__(self, dest: Path, link: bool = False, min_score: float = 0.0) -> None:
        self.dest = dest
        self.link = link
        self.min_score = min_score

    def folder_for(self, row: Row) -> Path:
        if (row.score or 0.0) < self.min_score:
            return self.dest / UNCERTAIN
        return self.dest / folder_name(row.label)

    def place(self, row: Row) -> bool:
        """Copy or link one classified file; False when it is already there (organising again adds nothing).

        A name taken by a different file gets a -1, -2, ... suffix instead of overwriting it.
        """
        source = Path(row.path)
        folder = self.folder_for(row)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(10_000):
            target = folder / (source.name if n == 0 else f"{source.stem}-{n}{source.suffix}")
            try:
                self._create(source, target)
                return True
            except FileExistsError:
                if _same_file(source, target):
                    return False
        raise FileExistsError(f"no free name for {source.name} in {folder}")

    def _create(self, source: Path, target: Path) -> None:
        """Exclusive creation, so a concurrent or earlier file of the same name is never replaced."""
        if self.link:
            os.symlink(source.resolve(), target)
            return
        with open(source, "rb") as src, open(target, "xb") as out:
            shutil.copyfileobj(src, out)
        shutil.copystat(source, target)


def _same_file(source: Path, target: Path) -> bool:
    """target is source already: a link to it, or a copy with the same bytes."""
    if target.is_symlink():
        return os.readlink(target) == str(source.resolve())
    return target.is_file() and filecmp.cmp(source, target, shallow=False)
