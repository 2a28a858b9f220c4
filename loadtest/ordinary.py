"""The ordinary-client stage of `make bench`: how a person comparing servers would measure them.

Python threads with `requests` (one Session per thread), a multipart upload per request, a
closed loop at each concurrency; six real ImageNet photos (a fixed, named choice read from
IMAGENET_SAMPLE_DIR, never copied into the project). Every system's best images/s is divided by
the reference loop measured right before it in the same run: the contract's preprocessing (JPEG
draft included) then the FLOAT EfficientNet-Lite0 .tflite in LiteRT at batch 1, one process, as
written by hand (LiteRT's default thread count; the same loop on two threads is recorded beside it) —
pinned to that artifact whatever DEFAULT_MODEL is, so a quantised default cannot move the yardstick.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from imgclf_contract.preprocess import preprocess
from loadtest import images
from loadtest.figures import Sample, latency_summary, percentile
from ml_worker import artifacts

REFERENCE_MODEL = "efficientnet_lite0"  # the float artifact; int8 variants live under other names
REFERENCE_PHOTOS = (  # ImageNet validation-size photos of several shapes and file sizes (21-101 kB)
    "n01440764_tench.JPEG",
    "n02088094_Afghan_hound.JPEG",
    "n02268853_damselfly.JPEG",
    "n02669723_academic_gown.JPEG",
    "n02977058_cash_machine.JPEG",
    "n03937543_pill_bottle.JPEG",
)
CpuProbe = Callable[[], dict[str, float]]  # service name -> CPU seconds used so far


@dataclass(frozen=True)
class PhotoChoice:
    photos: list[images.Photo]
    source: str
    fallback_reason: str | None = None


def reference_photos(sample_dir: Path) -> PhotoChoice:
    """The six named ImageNet photos; generated photos (with the reason) when the sample is absent."""
    missing = [name for name in REFERENCE_PHOTOS if not (sample_dir / name).is_file()]
    if missing:
        reason = f"{len(missing)} of the {len(REFERENCE_PHOTOS)} reference photos not found in {sample_dir}"
        return PhotoChoice(images.photo_set(len(REFERENCE_PHOTOS)), "generated (loadtest/images.py)", reason)
    photos = []
    for name in REFERENCE_PHOTOS:
        with Image.open(sample_dir / name) as image:
            width, height, fmt = image.width, image.height, image.format or "JPEG"
        photos.append(images.Photo(name, (sample_dir / name).read_bytes(), width, height, fmt))
    return PhotoChoice(photos, str(sample_dir))


# -- the reference loop ---------------------------------------------------------------------------
def quantised_tensors(tflite: Path) -> int:
    """How many int8 tensors the model holds: 0 for the float model (its uint8 input is not quantisation)."""
    details = Interpreter(model_path=str(tflite)).get_tensor_details()
    return sum(1 for d in details if d["dtype"] == np.int8)


@dataclass(frozen=True)
class LoopTimes:
    preprocess_s: list[float]
    inference_s: list[float]

    @property
    def total_s(self) -> list[float]:
        return [p + i for p, i in zip(self.preprocess_s, self.inference_s, strict=True)]


def batch1_loop(
    run: Callable[[np.ndarray], object], photos: list[images.Photo], size: int, max_pixels: int, seconds: float
) -> LoopTimes:
    """Preprocess + infer one photo after another: every photo at least once, then until `seconds`."""
    warm = preprocess(photos[0].data, max_pixels, size=size).tensor[None]
    for _ in range(3):
        run(warm)
    times = LoopTimes([], [])
    deadline = time.perf_counter() + seconds
    i = 0
    while i < len(photos) or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        tensor = preprocess(photos[i % len(photos)].data, max_pixels, size=size).tensor
        t1 = time.perf_counter()
        run(tensor[None])
        times.preprocess_s.append(t1 - t0)
        times.inference_s.append(time.perf_counter() - t1)
        i += 1
    return times


def loop_summary(times: LoopTimes) -> dict:
    total = times.total_s
    return {
        "images": len(total),
        "images_per_s": round(len(total) / sum(total), 2),
        "latency_p50_ms": round(percentile(total, 50) * 1000, 3),
        "preprocess_p50_ms": round(percentile(times.preprocess_s, 50) * 1000, 3),
        "inference_p50_ms": round(percentile(times.inference_s, 50) * 1000, 3),
    }


def hand_written(tflite: Path, num_threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """What a person writes for an in-process loop: an Interpreter (LiteRT's own thread default
    unless ``num_threads``), set the input, invoke, read the logits."""
    interpreter = Interpreter(model_path=str(tflite), num_threads=num_threads)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return run


def reference_loop(photos: list[images.Photo], artifacts_dir: Path, max_pixels: int, seconds: float) -> dict:
    """The yardstick: contract preprocessing + float Lite0 in LiteRT, batch 1, this one process,
    as written by hand (LiteRT's default threads: one here). The same loop on two XNNPACK
    threads is recorded beside it (``two_threads``), so the ratio to it can be read off too."""
    model = artifacts.load(artifacts_dir, REFERENCE_MODEL)
    quantised = quantised_tensors(model.tflite)
    if quantised:
        raise RuntimeError(f"{model.tflite} holds {quantised} int8 tensors: the reference loop needs the float model")
    figures = loop_summary(batch1_loop(hand_written(model.tflite), photos, model.input_size, max_pixels, seconds))
    two = loop_summary(batch1_loop(hand_written(model.tflite, 2), photos, model.input_size, max_pixels, seconds))
    return {
        "model": f"{model.name}:{model.version}",
        "tflite": str(model.tflite),
        "num_threads": "LiteRT default",
        **figures,
        "two_threads": two,
    }


# -- the ordinary client ----------------------------------------------------------------------------
def _post(session: requests.Session, url: str, field: str, photo: images.Photo, timeout_s: float) -> Sample:
    started = time.monotonic()
    try:
        response = session.post(url, files={field: (photo.name, photo.data, photo.mime)}, timeout=timeout_s)
        response.content  # noqa: B018 - the whole answer is read, as a client would
    except requests.RequestException:
        return Sample(started, time.monotonic() - started, 0)
    return Sample(started, time.monotonic() - started, response.status_code)


def closed_loop(
    url: str, field: str, photos: list[images.Photo], concurrency: int, duration_s: float, timeout_s: float
) -> tuple[list[Sample], float]:
    """`concurrency` threads, each with its own Session, send the next photo as soon as the last answer is in."""
    samples: list[Sample] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def run(offset: int) -> None:
        mine, i = [], offset
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                mine.append(_post(session, url, field, photos[i % len(photos)], timeout_s))
                i += 1
        with lock:
            samples.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + timeout_s + 5)
    return samples, time.monotonic() - started


@dataclass(frozen=True)
class Target:
    """A system under test as the ordinary client sees it."""

    name: str
    url: str  # the upload endpoint
    field: str  # the multipart field of the photo
    cpu: CpuProbe


def level(target: Target, photos: list[images.Photo], concurrency: int, duration_s: float, timeout_s: float) -> dict:
    before = target.cpu()
    client_cpu = time.process_time()
    samples, wall = closed_loop(target.url, target.field, photos, concurrency, duration_s, timeout_s)
    client_cpu = time.process_time() - client_cpu
    after = target.cpu()
    return {
        **load_figures(concurrency, samples, wall, before, after),
        "client_cpu_percent_of_one_core": round(100 * client_cpu / wall, 1),
    }


def load_figures(
    concurrency: int, samples: list[Sample], wall: float, cpu_before: dict[str, float], cpu_after: dict[str, float]
) -> dict:
    """What both load generators report for one level: counts, rate, latency of the answered, CPU per image."""
    ok = [s for s in samples if s.status == 200]
    return {
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "status_counts": {str(k): v for k, v in sorted(Counter(s.status for s in samples).items())},
        "images_per_s": round(len(ok) / wall, 2),
        "latency_ms": latency_summary([s.latency_s for s in ok]),
        "service_cpu_ms_per_image": {
            name: round((cpu_after.get(name, 0.0) - spent) * 1000 / max(len(ok), 1), 2)
            for name, spent in cpu_before.items()
        },
    }


def stage(
    target: Target, photos: list[images.Photo], levels: tuple[int, ...], duration_s: float, timeout_s: float, loop: dict
) -> dict:
    """Every level against one system, and its best (c <= 16, zero errors) over the loop measured before it."""
    figures = [level(target, photos, c, duration_s, timeout_s) for c in levels]
    clean = [f["images_per_s"] for f in figures if f["concurrency"] <= 16 and f["errors"] == 0]
    best = max(clean, default=0.0)
    return {
        "system": target.name,
        "reference_loop": loop,
        "levels": figures,
        "best_images_per_s": best,
        "best_over_loop": round(best / loop["images_per_s"], 3),
    }
