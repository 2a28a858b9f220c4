"""Settings side by side: ``python -m loadtest.ab '{}' '{"MAX_BATCH": "2"}' [--rounds 3] [--concurrency 16]``.

Each argument is a JSON object of settings (environment variables of the stack's services;
``WORKERS`` sets the number of workers). One stack per configuration, all up at once on their
own ports (run directories ``.test-run/ab-N``); then ``--rounds`` rounds, each driving every
stack in turn with the ordinary client (``loadtest.ordinary``: threads + requests, the six
reference photos) for ``--seconds`` at ``--concurrency``, after a short warm-up. Interleaving
the rounds spreads the shared machine's noise over all configurations alike. Prints each
level (images/s, p50, p99, errors, CPU ms per image of every service) and each configuration's
median images/s. ``--imgclf`` measures instead, per round and stack, `make bench`'s `imgclf`
stage (``bench.cli_stage``: `imgclf classify` over 384 generated photos at concurrency 4 between
two low-overhead closed loops at 4) and prints each ratio and each configuration's median.
The stack runs as `make bench` runs it (result cache off, no rate limits). Every level is
bounded in time and every request by its timeout.
"""

from __future__ import annotations

import argparse
import json
import statistics

from loadtest import images, ordinary
from loadtest.bench import STACK_ENV, Plan, cli_stage, cpu_seconds
from ml_worker.settings import WorkerSettings
from scripts.ports import free_base_port
from scripts.stack import ROOT, Stack, StackConfig

WARMUP_S = 1.5
TIMEOUT_S = 40.0


def start(index: int, settings: dict[str, str]) -> Stack:
    env = {**STACK_ENV, **settings}
    workers = int(env.pop("WORKERS", "1"))
    port = free_base_port(27000 + 20 * index)
    stack = Stack(StackConfig(run_dir=ROOT / ".test-run" / f"ab-{index}", port=port, workers=workers, env=env))
    stack.down()  # leftovers of an interrupted earlier run
    stack.up()
    return stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=json.loads, help="JSON objects of settings, one per stack")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--imgclf", action="store_true", help="the imgclf ÷ closed-loop ratio at c=4 instead")
    args = parser.parse_args(argv)
    worker_settings = WorkerSettings.from_env()
    photos = ordinary.reference_photos(worker_settings.imagenet_sample_dir).photos
    plan = Plan.make(smoke=False)
    bodies = [images.multipart(p) for p in images.photo_set(plan.image_count)]  # make bench's photos
    stacks: list[Stack] = []
    try:
        for index, settings in enumerate(args.configs):
            stacks.append(start(index, settings))
        rates: list[list[float]] = [[] for _ in stacks]
        for round_no in range(1, args.rounds + 1):
            for index, stack in enumerate(stacks):
                if args.imgclf:
                    cli = cli_stage(stack, bodies, plan, worker_settings, stack.config.run_dir)
                    rates[index].append(cli["ratio"])
                    print(f"round {round_no} {json.dumps(args.configs[index])}: imgclf {cli}", flush=True)
                    continue
                url = stack.config.url + "/api/v1/predictions"
                target = ordinary.Target(f"ab-{index}", url, "image", lambda stack=stack: cpu_seconds(stack))
                ordinary.closed_loop(url, "image", photos, 4, WARMUP_S, TIMEOUT_S)
                level = ordinary.level(target, photos, args.concurrency, args.seconds, TIMEOUT_S)
                rates[index].append(level["images_per_s"])
                cpu = {name: ms for name, ms in level["service_cpu_ms_per_image"].items() if ms > 0.05}
                latency = level["latency_ms"]
                print(
                    f"round {round_no} {json.dumps(args.configs[index])}: {level['images_per_s']} images/s, "
                    f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, {level['errors']} errors, "
                    f"CPU ms/image {cpu}, client {level['client_cpu_percent_of_one_core']} % of a core",
                    flush=True,
                )
        for settings, runs in zip(args.configs, rates, strict=True):
            unit = "imgclf ÷ closed loop" if args.imgclf else "images/s"
            print(f"median {json.dumps(settings)}: {statistics.median(runs)} {unit} over {runs}")
    finally:
        for stack in stacks:
            stack.down()


if __name__ == "__main__":
    main()
