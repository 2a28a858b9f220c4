"""The job/result messages, error codes and key names shared by API and worker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode
from imgclf_contract.jobs import TENSOR_BYTES, Job, Result, now_ms
from imgclf_contract.settings import SharedSettings


def test_job_round_trips_through_stream_fields():
    tensor = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    job = Job("j1", "r1", now_ms() + 1000, tensor.tobytes())
    fields = {k.encode(): v.encode() if isinstance(v, str) else v for k, v in job.to_fields().items()}
    decoded = Job.from_fields(fields)
    assert decoded == job
    np.testing.assert_array_equal(decoded.array(), tensor)
    assert not decoded.expired() and decoded.expired(job.deadline_ms + 1)


@pytest.mark.parametrize(
    "fields",
    [
        {b"v": b"1", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1", b"tensor": b"short"},
        {b"v": b"9", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1", b"tensor": b"\0" * TENSOR_BYTES},
        {b"v": b"1", b"job_id": b"j"},
    ],
)
def test_malformed_jobs_are_rejected(fields):
    with pytest.raises(ValueError):
        Job.from_fields(fields)


def test_result_round_trips_as_json():
    result = Result("j", "m", "1", "litert", "w", "b", 3, 7.5, deliveries=2, top=[(967, 0.9), (968, 0.05)])
    assert Result.from_json(result.to_json()) == result


def test_error_codes_carry_their_status():
    assert ErrorCode.UNSUPPORTED_MEDIA_TYPE.status == 415
    assert ErrorCode.QUEUE_FULL.status == ErrorCode.RATE_LIMITED.status == 429
    assert ErrorCode.TIMEOUT.status == 504
    assert all(isinstance(code.status, int) for code in ErrorCode)


def test_keys_share_one_prefix():
    assert keys.reply("x").startswith(keys.PREFIX + ":")
    assert keys.cache("m", "1", "abc") != keys.cache("m", "2", "abc")  # a new version never reads old answers
    assert keys.cache("m", "1", "abc") != keys.cache("n", "1", "abc")


PER_ID_KEYS = {
    "model": lambda i: keys.model(i, i),
    "reply": keys.reply,
    "worker_info": keys.worker_info,
    "cache": lambda i: keys.cache(i, i, i),
    "prediction": keys.prediction,
    "feedback": keys.feedback,
    "image": keys.image,
    "rate_limit": lambda i: keys.rate_limit(i, 0),
}


@given(st.text(max_size=40))
def test_no_id_makes_a_per_id_key_equal_a_fixed_key(some_id):
    """feedback("ids") once named the feedback index: GET /api/v1/feedback/ids hit a list (WRONGTYPE)."""
    for family, make in PER_ID_KEYS.items():
        key = make(some_id)
        assert key.startswith(keys.FAMILIES[family])
        assert key not in keys.FIXED_KEYS


def test_fixed_keys_lie_outside_every_per_id_family():
    assert set(PER_ID_KEYS) == set(keys.FAMILIES)  # every family is covered above
    for fixed in keys.FIXED_KEYS:
        assert not any(fixed.startswith(prefix) for prefix in keys.FAMILIES.values()), fixed
    assert keys.feedback("ids") != keys.FEEDBACK_INDEX


def test_redis_roles_fall_back_to_one_redis():
    single = SharedSettings.from_env({"REDIS_URL": "redis://r:6379/0"})
    assert single.queue_url == single.cache_url == "redis://r:6379/0"
    split = SharedSettings.from_env({"REDIS_URL": "redis://s/0", "QUEUE_REDIS_URL": "redis://q/0"})
    assert (split.queue_url, split.cache_url) == ("redis://q/0", "redis://q/0")
