"""The job/result messages, error codes and key names shared by API and worker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgclf_contract import keys
from imgclf_contract.errors import ErrorCode
from imgclf_contract.jobs import TENSOR_MARGIN_MS, Job, Result, now_ms
from imgclf_contract.model_record import parse_model_ref
from imgclf_contract.settings import SharedSettings


def test_job_round_trips_through_stream_fields_and_its_tensor_key():
    tensor = np.random.default_rng(0).integers(0, 256, (260, 260, 3), dtype=np.uint8)
    job = Job("j1", "r1", now_ms() + 1000, "efficientnet_lite2", "1", tensor.tobytes())
    fields = {k.encode(): v.encode() for k, v in job.to_fields().items()}
    assert all(len(v) < 100 for v in fields.values())  # the tensor is not in the entry
    decoded = Job.from_fields(fields, tensor.tobytes())
    assert decoded == job and job.tensor_key == keys.tensor("j1")
    np.testing.assert_array_equal(decoded.array(260), tensor)
    assert not decoded.expired() and decoded.expired(job.deadline_ms + 1)


def test_a_tensor_outlives_its_jobs_deadline_by_the_margin_only():
    job = Job("j1", "r1", 10_000, "efficientnet_lite0", "1", b"")
    assert job.tensor_ttl_ms(at_ms=4_000) == 6_000 + TENSOR_MARGIN_MS
    assert job.tensor_ttl_ms(at_ms=20_000) == TENSOR_MARGIN_MS  # past its deadline: the margin, never negative


def test_a_tensor_made_for_another_input_size_is_refused():
    job = Job("j1", "r1", now_ms() + 1000, "efficientnet_lite2", "1", bytes(224 * 224 * 3))
    with pytest.raises(ValueError, match="260x260x3"):
        job.array(260)


@pytest.mark.parametrize(
    "fields",
    [
        {b"v": b"2", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1", b"model": b"m", b"version": b"1"},
        {b"v": b"3", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"x", b"model": b"m", b"version": b"1"},
        {b"v": b"3", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1"},
        {b"v": b"3", b"job_id": b"j"},
    ],
)
def test_malformed_jobs_are_rejected(fields):
    with pytest.raises(ValueError):
        Job.from_fields(fields, bytes(224 * 224 * 3))


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [("efficientnet_lite0", ("efficientnet_lite0", "")), ("efficientnet_lite2:1", ("efficientnet_lite2", "1"))],
)
def test_model_references_parse(ref, parsed):
    assert parse_model_ref(ref) == parsed


@pytest.mark.parametrize(
    "ref", ["", "../x", "x" * 1024, "Efficient", "lite:", "lite:v1", "lite:1:2", "lite/1", "a b", "lite:1234567890"]
)
def test_bad_model_references_are_refused(ref):
    with pytest.raises(ValueError, match="not a model reference"):
        parse_model_ref(ref)


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
    assert keys.jobs("m", "1") != keys.jobs("m", "2") != keys.jobs("n", "2")  # batches never mix models


PER_ID_KEYS = {
    "jobs": lambda i: keys.jobs(i, i),
    "serving": lambda i: keys.serving(i, i),
    "model": lambda i: keys.model(i, i),
    "reply": keys.reply,
    "tensor": keys.tensor,
    "worker_info": keys.worker_info,
    "cache": lambda i: keys.cache(i, i, i),
    "prediction": keys.prediction,
    "feedback": keys.feedback,
    "image": keys.image,
    "rate_limit": lambda i: keys.rate_limit(i, 0),
    "dataset": keys.dataset,
    "dataset_labels": keys.dataset_labels,
    "dataset_embeddings": keys.dataset_embeddings,
    "dataset_image": lambda i: keys.dataset_image(i, i),
    "head": lambda i: keys.head(i, i),
    "head_pin": keys.head_pin,
    "export": lambda i: keys.export(i, i),
    "training": keys.training,
    "training_lock": keys.training_lock,
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


def test_no_family_is_a_prefix_of_another():
    """ "dataset:" and "dataset-labels:" must not share keys: a SCAN of one family never meets another's."""
    prefixes = list(keys.FAMILIES.values())
    for prefix in prefixes:
        assert [p for p in prefixes if p.startswith(prefix)] == [prefix], prefix


def test_redis_roles_fall_back_to_one_redis():
    single = SharedSettings.from_env({"REDIS_URL": "redis://r:6379/0"})
    assert single.queue_url == single.cache_url == "redis://r:6379/0"
    split = SharedSettings.from_env({"REDIS_URL": "redis://s/0", "QUEUE_REDIS_URL": "redis://q/0"})
    assert (split.queue_url, split.cache_url) == ("redis://q/0", "redis://q/0")
