"""Which files a run covers: images found by walking folders, plus every file named explicitly."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def walk_images(folder: Path) -> list[Path]:
    """Image files under folder, recursively, in a stable (sorted) order; symlinked folders are not followed."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(names) if is_image_name(Path(name)))
    return found


class PathsProblem(Exception):
    """The paths given cannot make a run: some do not exist, or there is no image among them."""


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """Absolute paths to classify, without duplicates.

    A named file is sent whatever its extension (the server decides from the content).
    A named path that does not exist, or no image at all, is a mistake in the command:
    PathsProblem, before anything is sent.
    """
    given = [Path(os.path.abspath(p)) for p in paths]
    missing = [str(p) for p in given if not p.exists()]
    if missing:
        raise PathsProblem(f"no such file or folder: {', '.join(missing)}")
    seen: dict[str, Path] = {}
    for path in given:
        for item in walk_images(path) if path.is_dir() else [path]:
            seen.setdefault(str(item), item)
    if not seen:
        names = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise PathsProblem(f"no image files in {', '.join(map(str, given))} (looked for {names})")
    return list(seen.values())


# Leading bytes of the formats the server accepts (JPEG, PNG, GIF, WebP, BMP, TIFF).
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def looks_like_image(path: Path) -> bool:
    """Decided by the file's first bytes, not its name (a .txt that is a JPEG counts; a .jpg of text does not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def labelled_images(root: Path) -> list[tuple[Path, str]]:
    """(file, label) for every image under each immediate subfolder of root (any depth below it)."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirs, names in os.walk(folder):
            dirs.sort()
            found.extend((Path(dirpath) / n, folder.name) for n in sorted(names) if looks_like_image(Path(dirpath) / n))
    return found
