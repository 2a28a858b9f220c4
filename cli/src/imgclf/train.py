"""``imgclf train DIR --name NAME``: upload a labelled folder into a dataset, train, print the report.

Resumable: images the dataset already holds under the same label (by sha256) are not sent again.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.client import ApiError, Client

POLL_S = 0.5


@dataclass
class Upload:
    sent: int = 0
    skipped: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)  # error code -> files


def _send(client: Client, dataset: str, path: Path, label: str) -> str | None:
    """None when stored, else the error code (per-file errors never stop the upload)."""
    try:
        client.add_image(dataset, path.name, path.read_bytes(), label)
    except OSError:
        return "unreadable"
    except ApiError as exc:
        if exc.status == 401:
            raise
        return exc.code
    return None


def upload(
    client: Client, dataset: str, files: list[tuple[Path, str]], concurrency: int, progress: Callable[[], None]
) -> Upload:
    """Send every (file, label) the dataset does not already hold with that label."""
    held = client.dataset_images(dataset)
    result = Upload()
    todo = []
    for path, label in files:
        if held.get(hashlib.sha256(path.read_bytes()).hexdigest()) == label:
            result.skipped += 1
            progress()
        else:
            todo.append((path, label))
    with ThreadPoolExecutor(concurrency, thread_name_prefix="imgclf-train") as pool:
        for (path, _label), error in zip(todo, pool.map(lambda job: _send(client, dataset, *job), todo), strict=True):
            if error:
                result.errors.setdefault(error, []).append(str(path))
            else:
                result.sent += 1
            progress()
    return result


def follow(client: Client, training_id: str, show: Callable[[dict], None]) -> dict:
    """Poll the training until it ends; ``show`` gets every state seen."""
    while True:
        state = client.training(training_id)
        show(state)
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(POLL_S)


def render_report(state: dict) -> str:
    report = state["report"]
    lines = [
        f"model {state['model']} version {state['version']}: hold-out top-1 {report['top1']:.1%}, "
        f"top-5 {report['top5']:.1%} on {report['holdout_images']} images (trained on {report['train_images']}, "
        f"{report.get('seconds', 0):.1f} s)",
        "",
        f"{'label':<30} {'precision':>9} {'recall':>7} {'images':>6}",
    ]
    for label, row in report["per_label"].items():
        precision = "-" if row["precision"] is None else f"{row['precision']:.0%}"
        recall = "-" if row["recall"] is None else f"{row['recall']:.0%}"
        lines.append(f"{label[:30]:<30} {precision:>9} {recall:>7} {row['support']:>6}")
    if report["confusions"]:
        lines += ["", "largest confusions:"]
        lines += [f"  {c['label']} -> {c['predicted']}: {c['count']}" for c in report["confusions"]]
    return "\n".join(lines)


def status_line(state: dict) -> str:
    parts = [state["status"], state["phase"]]
    if state.get("epoch"):
        parts.append(f"epoch {state['epoch']}/{state.get('max_epochs', '?')}")
    if state.get("holdout_accuracy") is not None:
        parts.append(f"hold-out {state['holdout_accuracy']:.1%}")
    return ", ".join(parts)


def print_status(state: dict) -> None:
    print(
        f"\r{status_line(state):<70}",
        end="" if state["status"] in ("queued", "running") else "\n",
        file=sys.stderr,
        flush=True,
    )
