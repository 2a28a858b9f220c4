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


def collect(paths: Iterable[str | Path]) -> list[Path]:
    """Absolute paths to classify, without duplicates.

    A named file is sent whatever its extension (the server decides from the content);
    a named path that does not exist is kept, so it is reported as unreadable rather than
    silently dropped.
    """
    seen: dict[str, Path] = {}
    for given in paths:
        path = Path(os.path.abspath(given))
        for item in walk_images(path) if path.is_dir() else [path]:
            seen.setdefault(str(item), item)
    return list(seen.values())
