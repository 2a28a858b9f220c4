"""`make bench-train`: your own categories end to end on this machine, on its own stack.

1. 720 generated images in 12 labels (``shapes.py``) uploaded with ``imgclf train``'s upload
   (each goes admission -> preprocessing -> worker -> stored embedding), then a training: the
   time from the first upload to the published version.
2. A retrain on the same, already stored embeddings.
3. A custom model's latency against its base, once the exports are built (their conversion
   would compete for the CPU): requests alternate base / custom image by image (result cache
   off, concurrency 1), so machine noise hits both alike; p50 of each.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "scripts")]

import shapes  # noqa: E402
from stack import Stack, StackConfig  # noqa: E402

from imgclf.client import Client  # noqa: E402
from imgclf.files import labelled_images  # noqa: E402
from imgclf.train import follow, upload  # noqa: E402
from ml_worker.benchmark import free_base_port  # noqa: E402

NAME = "bench_shapes"
BASE = "efficientnet_lite0"
LABELS = sorted(shapes.PAINTERS)  # 12
PER_LABEL = int(os.environ.get("BENCH_TRAIN_PER_LABEL", "60"))
LATENCY_PAIRS = int(os.environ.get("BENCH_TRAIN_LATENCY_PAIRS", "150"))
RESULTS = HERE / "results"


def _trained(client: Client) -> tuple[dict, float]:
    started = time.perf_counter()
    state = follow(client, client.start_training(NAME, 0.2)["id"], lambda s: None)
    assert state["status"] == "succeeded", state
    return state, time.perf_counter() - started


def _wait_for_export(url: str, version: str) -> float:
    """Seconds until the version's export downloads (the export child process would skew latencies)."""
    started = time.perf_counter()
    while requests.get(f"{url}/api/v1/models/{NAME}/export?version={version}", timeout=30).status_code != 200:
        time.sleep(0.5)
    return time.perf_counter() - started


def _latencies(url: str, folder: Path) -> dict[str, float]:
    """p50 (ms) of base and custom model, requests alternating image by image."""
    files = [path.read_bytes() for path, _ in labelled_images(folder)][:LATENCY_PAIRS]
    session = requests.Session()
    times: dict[str, list[float]] = {BASE: [], NAME: []}
    for data in files:
        for model in (BASE, NAME):
            started = time.perf_counter()
            response = session.post(
                f"{url}/api/v1/predictions", files={"image": ("x.png", data)}, data={"model": model}, timeout=30
            )
            response.raise_for_status()
            times[model].append((time.perf_counter() - started) * 1000)
    return {model: round(statistics.median(t), 2) for model, t in times.items()}


def main() -> int:
    config = StackConfig(
        run_dir=ROOT / ".test-run" / "bench-train", port=free_base_port(19300), trainer=True, env={"CACHE_TTL_S": "0"}
    )
    stack = Stack(config)
    stack.down()
    shutil.rmtree(config.run_dir, ignore_errors=True)  # a fresh Redis: nothing uploaded or trained yet
    stack.up()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
            folder = shapes.write_folder(Path(tmp), LABELS, PER_LABEL, seed=2026)
            files = labelled_images(folder)
            client = Client(config.url, pool_size=4)
            client.create_dataset(NAME, BASE)
            started = time.perf_counter()
            sent = upload(client, NAME, files, 4, lambda: None)
            upload_s = time.perf_counter() - started
            first, train_s = _trained(client)
            retrain, retrain_s = _trained(client)
            exports_s = _wait_for_export(config.url, retrain["version"])
            latency = _latencies(config.url, folder)
        result = {
            "images": len(files),
            "labels": len(LABELS),
            "uploaded": sent.sent,
            "refused": len(sent.errors),
            "upload_and_embed_s": round(upload_s, 1),
            "train_s": round(train_s, 1),
            "end_to_end_s": round(upload_s + train_s, 1),
            "holdout_top1": first["report"]["top1"],
            "epochs": first.get("epoch"),
            "fit_s": first["report"].get("seconds"),
            "retrain_s": round(retrain_s, 1),
            "retrain_version": retrain["version"],
            "both_exports_ready_after_retrain_s": round(exports_s, 1),
            "p50_ms": latency,
            "custom_minus_base_p50_ms": round(latency[NAME] - latency[BASE], 2),
            "latency_pairs": LATENCY_PAIRS,
        }
    finally:
        stack.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bench_training-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
