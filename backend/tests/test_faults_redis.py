"""Redis killed under load: the API answers prompt 503s while it is gone, every
piece reconnects by itself when it is back, and feedback written before the
crash survives (AOF, appendfsync everysec)."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from ml_worker.golden import PHOTOS
from testsupport import faults as fl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FSYNC_WAIT_S = 1.5  # appendfsync everysec: a write is on disk within about a second


def _give_feedback(url: str) -> dict:
    """Classify coffee.png and confirm it: a feedback record tied to a real prediction."""
    with requests.Session() as session:
        prediction = fl.post_photo(session, url, PHOTOS[0])
        assert prediction.status == 200, prediction.body
        top = prediction.body["predictions"][0]
        response = session.post(
            f"{url}/api/v1/feedback",
            json={
                "prediction_id": prediction.body["id"],
                "correct": True,
                "expected_class_index": top["class_index"],
                "comment": "before the redis crash",
            },
            timeout=5,
        )
    assert response.status_code == 201, response.text
    return response.json()


def test_redis_crash_gives_503s_then_heals_and_keeps_feedback(stack_factory) -> None:
    stack = stack_factory("faults-redis", workers=1, env=fl.FAST_ENV)
    url = stack.config.url
    feedback = _give_feedback(url)
    time.sleep(FSYNC_WAIT_S)
    worker_pid = stack.pid("worker-1")

    with fl.Load(url, clients=3, max_s=45, max_requests=3000) as load:
        time.sleep(1)
        stack.signal("redis", signal.SIGKILL)
        killed = time.monotonic()
        assert fl.wait_until(lambda: any(o.status == 503 and o.started > killed for o in load.outcomes), fl.PROMPT_S)
        ready = requests.get(f"{url}/api/v1/ready", timeout=fl.PROMPT_S)
        assert ready.status_code == 503 and "redis" in ready.json()["error"]["details"]["missing"], ready.text
        time.sleep(1)  # a real outage, not a blip
        restarting = time.monotonic()
        healed = fl.restart_and_wait_healed(stack, "redis", load)
        time.sleep(2)  # some steady traffic after healing
    outcomes = load.outcomes

    assert healed, "no request succeeded after Redis came back"
    fl.assert_outage_handled(outcomes, healed)
    down = [o for o in outcomes if o.started > killed and o.ended < restarting]
    assert down and all(o.status == 503 and o.body["error"]["details"].get("missing") == "redis" for o in down)
    assert stack.pid("worker-1") == worker_pid, "the worker should ride out the outage, not die"
    assert requests.get(f"{url}/api/v1/ready", timeout=5).status_code == 200
    kept = requests.get(f"{url}/api/v1/feedback/{feedback['id']}", timeout=5)
    assert kept.status_code == 200 and kept.json() == feedback
