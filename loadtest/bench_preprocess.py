"""Preprocessing before and after a change, interleaved in one process
(``python -m loadtest.bench_preprocess --before REV``).

The contract module as it was at REV (read with ``git show``) and as it is now run
alternately on each photo, the order flipping from photo to photo, so a busy neighbour on
a shared machine slows both alike. Each side does what the API does for a job: bytes of the
upload to bytes of the crop. Two sets: ImageNet-size photos from IMAGENET_SAMPLE_DIR and
12 MP phone-size JPEGs from the benchmark's photo generator. Prints CPU ms/image per run,
the median of the runs, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from imgclf_contract import preprocess as current
from loadtest.images import SIZES, make_photo
from ml_worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = "contract/src/imgclf_contract/preprocess.py"
MAX_PIXELS = 40_000_000
PHONE = SIZES.index((4032, 3024, "JPEG", 92))  # the generator's 12 MP JPEG, every len(SIZES)th photo


def module_at(revision: str) -> ModuleType:
    """The preprocessing contract as it was at ``revision``, importable beside today's."""
    source = subprocess.run(["git", "show", f"{revision}:{CONTRACT}"], cwd=ROOT, check=True, capture_output=True)
    module = ModuleType("preprocess_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source.stdout, f"{revision}:{CONTRACT}", "exec"), module.__dict__)  # our own contract, from git
    return module


def job_bytes(module: ModuleType, size: int) -> Callable[[bytes], bytes]:
    """What the API makes of an upload for the job, with that version of the contract."""

    def run(data: bytes) -> bytes:
        result = module.preprocess(data, MAX_PIXELS, size=size)
        return result.pixels if hasattr(result, "pixels") else result.tensor.tobytes()

    return run


def interleaved(photos: list[bytes], before: Callable, after: Callable) -> tuple[float, float]:
    """CPU ms/image of each side over one pass through ``photos``, alternating which goes first.
    CPU time of this thread (Pillow works in the calling thread): a neighbour's load on a shared
    machine does not count, as it would in wall time (caches and memory bandwidth still do)."""
    spent = {"before": 0.0, "after": 0.0}
    for index, data in enumerate(photos):
        pair = [("before", before), ("after", after)]
        for name, run in pair if index % 2 == 0 else pair[::-1]:
            started = time.thread_time()
            run(data)
            spent[name] += time.thread_time() - started
    return spent["before"] * 1000 / len(photos), spent["after"] * 1000 / len(photos)


def report(title: str, photos: list[bytes], before: Callable, after: Callable, runs: int) -> None:
    interleaved(photos[:3], before, after)  # warm both (imports, caches)
    results = [interleaved(photos, before, after) for _ in range(runs)]
    old, new = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    print(f"{title}: {len(photos)} photos x {runs} runs")
    for number, (b, a) in enumerate(results, 1):
        print(f"  run {number}: before {b:.2f} CPU ms/image, after {a:.2f}, after/before {a / b:.2f}")
    print(f"  median: before {old:.2f}, after {new:.2f} CPU ms/image: {old / new:.2f}x as fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the contract to compare with")
    parser.add_argument("--size", type=int, default=current.INPUT_SIZE, help="model input size (224 or 260)")
    parser.add_argument("--photos", type=int, default=100, help="ImageNet photos (every nth of the sample)")
    parser.add_argument("--phone-photos", type=int, default=8, help="12 MP JPEGs")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    before, after = job_bytes(module_at(args.before), args.size), job_bytes(current, args.size)
    sample = sorted(WorkerSettings.from_env().imagenet_sample_dir.glob("*.JPEG"))
    if sample:
        chosen = sample[:: max(1, len(sample) // args.photos)][: args.photos]
        report("ImageNet-size JPEGs", [p.read_bytes() for p in chosen], before, after, args.runs)
    else:
        print("ImageNet sample absent (set IMAGENET_SAMPLE_DIR): skipping that set", file=sys.stderr)
    phones = [make_photo(PHONE + i * len(SIZES)).data for i in range(args.phone_photos)]
    report("12 MP JPEGs (4032x3024)", phones, before, after, args.runs)
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
