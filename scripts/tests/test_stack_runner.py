"""`make up` semantics of the stack runner: idempotent, self-healing, and `down` leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest
import requests

from scripts.ports import unused_port
from scripts.stack import ROOT, VENV_BIN, Stack, StackConfig
from testsupport.processes import wait_until

pytestmark = pytest.mark.integration


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_second_up_is_a_quick_no_op_and_revives_dead_services(stack_factory):
    stack: Stack = stack_factory("runner")
    before = dict(stack.status())
    assert all(before.values())
    started = time.monotonic()
    stack.up()
    assert time.monotonic() - started < 3
    assert dict(stack.status()) == before  # nothing restarted

    stack.signal("worker-1", signal.SIGKILL)
    assert wait_until(lambda: stack.pid("worker-1") is None, timeout_s=10)
    stack.up()
    after = dict(stack.status())
    assert after["worker-1"] and after["worker-1"] != before["worker-1"]
    assert {k: v for k, v in after.items() if k != "worker-1"} == {k: v for k, v in before.items() if k != "worker-1"}
    response = requests.get(stack.config.url + "/api/v1/ready", timeout=10)
    assert response.status_code == 200


def test_down_stops_exactly_what_up_started(stack_factory):
    stack: Stack = stack_factory("runner-down")
    pids = [pid for _name, pid in stack.status()]
    stack.down()
    assert all(stack.pid(name) is None for name, _ in stack.status())
    assert wait_until(lambda: all(_gone(pid) for pid in pids), timeout_s=10)
    assert not list(stack.config.run_dir.glob("*.pid"))


@pytest.mark.stack  # runs `make up`'s runner as a process, which starts Redis and a worker
def test_failed_start_names_the_service_and_its_log(tmp_path, stack_port):
    """A worker that cannot load its model makes `up` fail with the service and log named."""
    port = stack_port
    env = {**os.environ, "RUN_DIR": str(tmp_path / "run"), "PORT": str(port), "ARTIFACTS_DIR": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), "up"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        assert result.returncode == 1
        assert "worker-1" in result.stderr and "worker-1.log" in result.stderr
    finally:
        Stack(StackConfig(run_dir=tmp_path / "run", port=port)).down()


def test_tls_option_serves_https_with_the_same_locations(stack_factory, tmp_path):
    """TLS_CERT_FILE/TLS_KEY_FILE add an HTTPS server from nginx/tls.conf.template."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    tls_port = unused_port()
    stack: Stack = stack_factory(
        "runner-tls", env={"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key), "TLS_PORT": str(tls_port)}
    )
    response = requests.get(f"https://127.0.0.1:{tls_port}/api/v1/ready", verify=str(cert), timeout=10)
    assert response.status_code == 200
    page = requests.get(f"https://127.0.0.1:{tls_port}/", verify=str(cert), timeout=10)
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert requests.get(stack.config.url + "/api/v1/health", timeout=10).status_code == 200  # HTTP stays


def test_each_stack_has_its_own_gunicorn_control_socket(stack_factory):
    """Two stacks once shared ~/.gunicorn/gunicorn.ctl: the second replaced it, `down` deleted it."""
    first: Stack = stack_factory("runner-ctl-1")
    second: Stack = stack_factory("runner-ctl-2")
    sockets = [s.config.run_dir / "api.ctl" for s in (first, second)]
    assert all(path.is_socket() for path in sockets)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in sockets)
    second.down()
    assert sockets[0].is_socket()  # the first stack's socket survives the second's `down`
    gunicornc = str(VENV_BIN / "gunicornc")
    command = [gunicornc, "-s", str(sockets[0]), "-c", "show workers", "-j"]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    workers = [w["pid"] for w in json.loads(shown.stdout)["workers"]]
    assert workers == [c.pid for c in psutil.Process(first.pid("api")).children()]  # it is the first stack's


def test_restart_appends_to_the_log_after_a_marker_line(stack_factory):
    """Restarting a dead service once truncated its log: a crash's last words must survive."""
    stack: Stack = stack_factory("runner-logs")
    log = stack.log_path("worker-1")
    first_run = log.read_text()
    assert "worker ready" in first_run
    stack.signal("worker-1", signal.SIGKILL)
    assert wait_until(lambda: stack.pid("worker-1") is None, timeout_s=10)
    stack.up()
    text = log.read_text()
    assert text.startswith(first_run)  # nothing lost
    markers = [json.loads(line) for line in text.splitlines() if '"logger": "stack"' in line]
    assert [m["msg"] for m in markers] == ["starting worker-1", "starting worker-1"]
    assert "worker ready" in stack.current_log("worker-1")  # this run's log, from its marker on
    assert stack.current_log("worker-1").startswith(json.dumps(markers[1]))
