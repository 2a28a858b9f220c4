"""The BentoML peer's start-up is bounded and its failures become reasons, never a hung or failed bench."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest.peers import bentoml_peer
from scripts.ports import unused_port


def _peer(tmp_path: Path, code: str) -> bentoml_peer.RunningPeer:
    log = tmp_path / "peer.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)
    return bentoml_peer.RunningPeer(process, f"http://127.0.0.1:{unused_port()}", log)


def test_a_server_that_exits_is_reported_with_its_last_words(tmp_path: Path) -> None:
    peer = _peer(tmp_path, "print('ModuleNotFoundError: No module named bentoml'); raise SystemExit(3)")
    with pytest.raises(
        bentoml_peer.PeerUnavailable, match=r"exited with 3: ModuleNotFoundError: No module named bentoml"
    ):
        bentoml_peer.wait_ready(peer, 30)


def test_a_server_that_never_answers_is_given_up_on_in_time_and_stopped(tmp_path: Path) -> None:
    peer = _peer(tmp_path, "import time; print('loading', flush=True); time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(bentoml_peer.PeerUnavailable, match=r"not ready within 1 s: loading"):
        bentoml_peer.wait_ready(peer, 1)
    assert time.monotonic() - started < 5
    bentoml_peer.stop(peer)
    assert peer.process.poll() is not None
