"""``python -m testsupport.slow_worker --delay-ms N``: the real ``ml-worker``, its backend
holding every batch N ms, for stack tests that need a batch in flight (kill, SIGTERM, time-outs).

The stack runner starts it in place of ``ml-worker`` (``StackConfig.worker_argv``), so the
production worker carries no test-only setting.
"""

from __future__ import annotations

import argparse
import sys
import time

from imgclf_contract import logs
from ml_worker.settings import WorkerSettings
from ml_worker.worker import load, serve
from testsupport.delayed_backend import delayed


def argv(delay_ms: int) -> list[str]:
    """The command line that starts this worker (for ``StackConfig.worker_argv``)."""
    return [sys.executable, "-m", "testsupport.slow_worker", "--delay-ms", str(delay_ms)]


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=int, required=True, help="how long every batch is held")
    delay_ms = parser.parse_args(args).delay_ms
    started = time.monotonic()
    settings = WorkerSettings.from_env()
    logs.configure(settings.log_level)
    return serve(settings, delayed(load(settings), delay_ms / 1000), started)


if __name__ == "__main__":
    sys.exit(main())
