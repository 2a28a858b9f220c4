"""API CPU and Redis commands per request, on a real stack with the result cache off.

Starts its own stack (``PORT``, default 24900; run directory ``.run-api-cpu-0``), then runs
``--rounds`` rounds of ``--requests`` uploads of ImageNet-size photos
(IMAGENET_SAMPLE_DIR) from an ordinary client (threads + requests) at ``--concurrency``,
and reports per request: the CPU of the API's gunicorn processes (from /proc), each Redis
role's CPU and its commands (INFO commandstats deltas), with the medians over the rounds
and the load average. Every round is bounded in count and in time. The result cache is off
unless ``--cache`` (then, after the warm-up, every upload is a cache hit).

``--code LABEL=DIR`` (repeatable) compares versions of the API in one run: one stack per
version, each API importing its code from DIR first (PYTHONPATH; e.g. ``git archive`` of an
older commit's ``backend/src``), rounds interleaved so the machine's noise hits all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from loadtest.figures import cpu_seconds_of, process_tree
from ml_worker.settings import WorkerSettings
from scripts.stack import REDIS_ROLES, ROOT, Stack, StackConfig

SAMPLE = WorkerSettings.from_env().imagenet_sample_dir  # IMAGENET_SAMPLE_DIR, or the shared one beside the checkout
ROUND_LIMIT_S = 120.0


def tree_cpu_s(pid: int) -> float:
    return cpu_seconds_of(process_tree(pid))


def commandstats(stack: Stack, role: str) -> dict[str, int]:
    stats = stack.redis(role).info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def one_round(stack: Stack, photos: list[bytes], n: int, concurrency: int) -> dict:
    url = f"{stack.config.url}/api/v1/predictions"
    pids = {"api": stack.pid("api"), **{role: stack.pid(service) for role, (service, _o, _c) in REDIS_ROLES.items()}}
    cpu_before = {name: tree_cpu_s(pid) for name, pid in pids.items()}
    commands_before = {role: commandstats(stack, role) for role in REDIS_ROLES}
    deadline = time.monotonic() + ROUND_LIMIT_S
    local = threading.local()  # one keep-alive session per client thread

    def send(i: int) -> int:
        if time.monotonic() > deadline:
            return -1
        if not hasattr(local, "session"):
            local.session = requests.Session()
        files = {"image": ("photo.jpg", photos[i % len(photos)], "image/jpeg")}
        return local.session.post(url, files=files, timeout=30).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(send, range(n)))
    elapsed = time.monotonic() - started
    ok = statuses.count(200)
    cpu = {name: (tree_cpu_s(pid) - cpu_before[name]) * 1000 / max(ok, 1) for name, pid in pids.items()}
    commands = {}
    for role in REDIS_ROLES:
        after = commandstats(stack, role)
        delta = {k: v - commands_before[role].get(k, 0) for k, v in after.items()}
        commands[role] = {k: round(v / max(ok, 1), 2) for k, v in sorted(delta.items()) if v and k != "info"}
    return {"ok": ok, "errors": n - ok, "images_per_s": ok / elapsed, "cpu_ms": cpu, "commands": commands}


def _variants(specs: list[str]) -> dict[str, str]:
    """LABEL=DIR pairs; none: this checkout's code alone."""
    pairs = dict(spec.split("=", 1) for spec in specs)
    return pairs or {"current": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--cache", action="store_true", help="result cache on: after the warm-up every upload is a hit")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted(SAMPLE.glob("*.JPEG"))[: args.photos]]
    if not photos:
        raise SystemExit(f"no photos in {SAMPLE} (set IMAGENET_SAMPLE_DIR)")
    port = int(os.environ.get("PORT", "24900"))
    stacks = {}
    for i, (label, code) in enumerate(_variants(args.code).items()):
        env = {"CACHE_TTL_S": "86400" if args.cache else "0", **({"PYTHONPATH": code} if code else {})}
        config = StackConfig(run_dir=ROOT / f".run-api-cpu-{i}", port=port + 10 * i, env=env, trainer=False)
        stacks[label] = Stack(config)
    rounds: dict[str, list[dict]] = {label: [] for label in stacks}
    try:
        for stack in stacks.values():
            stack.down()
            stack.up()
            one_round(stack, photos, max(64, len(photos)), args.concurrency)  # warm-up (caches every photo)
        for _ in range(args.rounds):
            for label, stack in stacks.items():
                rounds[label].append(one_round(stack, photos, args.requests, args.concurrency))
    finally:
        for stack in stacks.values():
            stack.down()
    summary = {
        "load_average": os.getloadavg(),
        "rounds": rounds,
        "median_cpu_ms": {
            label: {k: round(statistics.median(r["cpu_ms"][k] for r in runs), 3) for k in runs[0]["cpu_ms"]}
            for label, runs in rounds.items()
        },
        "median_images_per_s": {
            label: round(statistics.median(r["images_per_s"] for r in runs), 1) for label, runs in rounds.items()
        },
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
