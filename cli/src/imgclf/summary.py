"""What a run says at the end (also after Ctrl-C): the whole results file, then this run."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.results import Row

MAX_NAMED_FAILURES = 10


def shown_path(path: str) -> str:
    """A path relative to the current folder when it is inside it (shorter to read), else as stored."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


@dataclass
class Summary:
    out: Path  # the results file
    todo: int  # files this run had to classify
    earlier: int  # files done by earlier runs, skipped
    sent: int = 0  # rows this run wrote
    organized: int = 0  # files copied or linked now
    already_organized: int = 0  # files that were in place already
    organized_earlier_rows: int = 0  # of all organised, those classified by earlier runs
    interrupted: bool = False
    gave_up: str = ""  # why the run stopped waiting for the server
    started: float = field(default_factory=time.monotonic)

    def add(self, _row: Row) -> None:
        self.sent += 1

    def render(self, rows: list[Row], dest: Path | None = None, top: int = 5) -> str:
        """The report; rows are every row of the results file (earlier runs included)."""
        failed = [row for row in rows if not row.ok]
        lines = [
            f"{self._state()}: {len(rows)} files in {self.out.name}: {len(rows) - len(failed)} classified, "
            f"{len(failed)} failed",
            self._this_run(),
            *_failures(failed, self.out.name),
        ]
        labels = Counter(row.label for row in rows if row.ok)
        if labels:
            lines.append("top classes: " + ", ".join(f"{label} ({n})" for label, n in labels.most_common(top)))
        if dest is not None:
            lines.append(self._organized(dest))
        lines.extend(self._next_step(rows))
        return "\n".join(lines)

    def _state(self) -> str:
        if self.gave_up:
            return "stopped"
        return "interrupted" if self.interrupted else "finished"

    def _this_run(self) -> str:
        if not self.todo:
            return f"this run: nothing new to classify; {self.earlier} already done earlier"
        elapsed = time.monotonic() - self.started
        rate = self.sent / elapsed if elapsed > 0 else 0.0
        return (
            f"this run: {self.sent} of {self.todo} files in {elapsed:.1f} s ({rate:.1f} images/s); "
            f"{self.earlier} already done earlier"
        )

    def _organized(self, dest: Path) -> str:
        earlier = (
            f"; {self.organized_earlier_rows} of them from earlier runs in {self.out.name}"
            if self.organized_earlier_rows
            else ""
        )
        return f"organized into {dest}: {self.organized} added, {self.already_organized} already there{earlier}"

    def _next_step(self, rows: list[Row]) -> list[str]:
        """What to do now: resume after Ctrl-C or an outage, retry transient failures."""
        if self.gave_up:
            return [
                f"gave up: {self.gave_up}",
                "run the same command again once it is back: finished files are skipped",
            ]
        if self.interrupted:
            return [f"run the same command again to resume: the {len(rows)} files in {self.out.name} are skipped"]
        transient = sum(row.retry_on_rerun for row in rows)
        if transient:
            return [
                f"{transient} failed for now (server busy or unavailable): run the same command again to retry them"
            ]
        return []


def _failures(failed: list[Row], out_name: str) -> list[str]:
    """Names the failed files (the first few), and how to find the rest."""
    if not failed:
        return []
    named = ", ".join(f"{shown_path(row.path)} ({row.error_code})" for row in failed[:MAX_NAMED_FAILURES])
    lines = [f"failed: {named}"]
    if len(failed) > MAX_NAMED_FAILURES:
        lines.append(f"  … and {len(failed) - MAX_NAMED_FAILURES} more: the rows with status 'error' in {out_name}")
    return lines
