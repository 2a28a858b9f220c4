"""Accuracy on a labelled folder: one subfolder per class, named by label name or WordNet id."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.files import is_image_name, walk_images
from imgclf.results import Row


def _key(name: str) -> str:
    """Folder names match labels case-insensitively, with '_' standing for a space."""
    return name.strip().lower().replace("_", " ")


def label_index(labels: list[dict]) -> dict[str, set[str]]:
    """Folder key -> the class ids it may mean (ImageNet has a few duplicate names, e.g. two 'crane's).

    A class id is the wnid, or for a custom model's labels (no wnid) the label itself.
    """
    index: dict[str, set[str]] = {}
    for label in labels:
        ident = class_id(label["wnid"], label["name"])
        for key in {_key(label["name"]), _key(ident)}:
            index.setdefault(key, set()).add(ident)
    return index


def class_id(wnid: str | None, name: str) -> str:
    return wnid or name


@dataclass
class ClassStats:
    name: str
    images: int = 0
    top1: int = 0
    top5: int = 0
    errors: int = 0


@dataclass
class Evaluation:
    classes: dict[str, ClassStats] = field(default_factory=dict)
    unknown_folders: list[str] = field(default_factory=list)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, folder: str, wnids: set[str], row: Row) -> None:
        stats = self.classes.setdefault(folder, ClassStats(folder))
        if not row.ok:
            stats.errors += 1
            return
        stats.images += 1
        predicted = [class_id(p["wnid"], p["label"]) for p in row.top5 or []]
        hit = bool(predicted) and predicted[0] in wnids
        stats.top1 += hit
        stats.top5 += bool(wnids.intersection(predicted))
        if not hit:
            self.confusions[(folder, row.label)] += 1

    def totals(self) -> ClassStats:
        total = ClassStats("all")
        for stats in self.classes.values():
            total.images += stats.images
            total.top1 += stats.top1
            total.top5 += stats.top5
            total.errors += stats.errors
        return total

    def as_dict(self, confusions: int = 10) -> dict:
        def accuracy(stats: ClassStats) -> dict:
            n = stats.images
            return {
                "images": n,
                "errors": stats.errors,
                "top1": stats.top1 / n if n else None,
                "top5": stats.top5 / n if n else None,
            }

        return {
            **accuracy(self.totals()),
            "classes": {name: accuracy(stats) for name, stats in sorted(self.classes.items())},
            "confusions": [
                {"expected": folder, "predicted": label, "count": n}
                for (folder, label), n in self.confusions.most_common(confusions)
            ],
            "unknown_folders": self.unknown_folders,
        }

    def render(self) -> str:
        report = self.as_dict()
        width = max([len(name) for name in report["classes"]] + [5])
        lines = [f"{'class':<{width}}  images  errors   top-1   top-5"]
        for name, stats in [*report["classes"].items(), ("all", report)]:
            lines.append(
                f"{name:<{width}}  {stats['images']:6d}  {stats['errors']:6d}  "
                f"{_pct(stats['top1']):>6}  {_pct(stats['top5']):>6}"
            )
        if report["confusions"]:
            lines.append("most frequent confusions:")
            lines += [f"  {c['expected']} -> {c['predicted']}: {c['count']}" for c in report["confusions"]]
        if self.unknown_folders:
            lines.append("folders not matching any label (skipped): " + ", ".join(self.unknown_folders))
        return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def labelled_files(root: Path, labels: list[dict]) -> tuple[dict[Path, tuple[str, set[str]]], list[str]]:
    """Each image under a known class folder -> (folder name, accepted wnids); plus the unknown folder names.

    Images directly in ``root`` named ``<wnid>_...`` (the ImageNet sample sets) count as that class.
    """
    index = label_index(labels)
    names = {label["wnid"]: label["name"] for label in labels}
    files: dict[Path, tuple[str, set[str]]] = {}
    for path in sorted(p for p in root.iterdir() if p.is_file() and is_image_name(p)):
        wnid = path.name.partition("_")[0]
        if wnid in names:
            files[path.absolute()] = (names[wnid], {wnid})
    unknown: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        wnids = index.get(_key(folder.name))
        if wnids is None:
            unknown.append(folder.name)
            continue
        for path in walk_images(folder):
            files[path.absolute()] = (folder.name, wnids)
    return files, unknown
