"""Installs, starts and always stops the BentoML peer of `make bench` (loadtest/peers/bentoml_service.py).

The peer gets its own virtualenv (.venv-peers: pinned bentoml, ai-edge-litert and the contract
package; never part of `make setup` or `make test`), installed once and again only when
requirements.txt changes. Whatever fails — no registry, a failed install, a server that does
not come up in time — becomes a recorded reason and the bench goes on.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtest.figures import cpu_seconds_of, peak_rss_mb, process_tree
from ml_worker.artifacts import LABELS, ModelArtifacts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv-peers"
REQUIREMENTS = HERE / "requirements.txt"
INSTALL_TIMEOUT_S = 600
STOP_TIMEOUT_S = 20


class PeerUnavailable(Exception):
    """The peer could not be installed or started; the message says exactly why."""


def version() -> str:
    """The bentoml version requirements.txt pins."""
    pins = dict(line.split("==", 1) for line in REQUIREMENTS.read_text().splitlines() if "==" in line)
    return pins["bentoml"].strip()


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1][:300]


def ensure_venv() -> Path:
    """.venv-peers with the pinned packages (a stamp holds the requirements' hash); its bentoml executable."""
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    exe = VENV / "bin" / "bentoml"
    if stamp.is_file() and stamp.read_text() == wanted and exe.exists():
        return exe
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [
            str(VENV / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            "-r",
            str(REQUIREMENTS),
            "-e",
            str(ROOT / "contract"),
        ],
    ]
    print(f"installing the BentoML peer into {VENV} (once)", flush=True)
    for argv in steps:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable(f"`{' '.join(argv[:3])} ...` did not finish in {INSTALL_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            raise PeerUnavailable(f"`{' '.join(argv[:3])} ...` failed: {_last_line(proc.stderr or proc.stdout)}")
    stamp.write_text(wanted)
    return exe


@dataclass
class RunningPeer:
    process: subprocess.Popen
    url: str  # base URL
    log: Path

    def pids(self) -> list[int]:
        """The server and its worker processes."""
        return process_tree(self.process.pid)

    def cpu_seconds(self) -> dict[str, float]:
        return {"bentoml": cpu_seconds_of(self.pids())}

    def peak_rss_mb(self) -> dict:
        pids = self.pids()
        return {"total_mb": peak_rss_mb(pids), "processes": len(pids)}


def wait_ready(peer: RunningPeer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            last = _last_line(peer.log.read_text())
            raise PeerUnavailable(f"bentoml serve exited with {peer.process.returncode}: {last}")
        try:
            with urllib.request.urlopen(peer.url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise PeerUnavailable(f"bentoml serve was not ready within {timeout_s:g} s: {_last_line(peer.log.read_text())}")


def stop(peer: RunningPeer) -> None:
    """SIGTERM to the server (it stops its workers), then SIGKILL whatever of its tree is left."""
    pids = peer.pids()
    if peer.process.poll() is None:
        peer.process.send_signal(signal.SIGTERM)
        try:
            peer.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            peer.process.kill()
            peer.process.wait(5)
    for pid in pids[1:]:
        with suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


@contextmanager
def running(
    model: ModelArtifacts, port: int, run_dir: Path, workers: int, max_pixels: int, start_timeout_s: float
) -> Iterator[RunningPeer]:
    """`bentoml serve` on 127.0.0.1:port serving `model`'s .tflite, stopped on leaving the block."""
    exe = ensure_venv()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(run_dir / "bentoml-home"),
        "PEER_TFLITE": str(model.tflite),
        "PEER_LABELS": str(model.directory / LABELS),
        "PEER_INPUT_SIZE": str(model.input_size),
        "PEER_MAX_PIXELS": str(max_pixels),
        "PEER_WORKERS": str(workers),
    }
    log = run_dir / "bentoml.log"
    argv = [str(exe), "serve", "bentoml_service:Classifier", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
    peer = RunningPeer(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(peer, start_timeout_s)
        yield peer
    finally:
        stop(peer)
