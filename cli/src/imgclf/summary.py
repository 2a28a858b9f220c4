"""Counts of a run, printed at the end (also after Ctrl-C)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from imgclf.results import Row


@dataclass
class Summary:
    total: int = 0  # files found
    skipped: int = 0  # already done by an earlier run
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    organized: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)

    def add(self, row: Row) -> None:
        if row.ok:
            self.ok += 1
            self.labels[row.label] += 1
        else:
            self.errors[row.error_code] += 1

    @property
    def done(self) -> int:
        return self.ok + self.errors.total()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def render(self, top: int = 5) -> str:
        state = "interrupted" if self.interrupted else "finished"
        lines = [
            f"{state}: {self.done} of {self.total - self.skipped} files classified in {self.elapsed_s:.1f} s "
            f"({self.rate:.1f} images/s); {self.skipped} already done earlier",
            f"ok: {self.ok}, errors: {self.errors.total()}"
            + (" (" + ", ".join(f"{code}: {n}" for code, n in self.errors.most_common()) + ")" if self.errors else ""),
        ]
        if self.organized:
            lines.append(f"organized: {self.organized} files")
        if self.labels:
            lines.append("top classes: " + ", ".join(f"{label} ({n})" for label, n in self.labels.most_common(top)))
        return "\n".join(lines)
