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
