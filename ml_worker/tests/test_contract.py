"""Configuration parsing and the job/result messages shared by API and worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_worker.contract import keys
from ml_worker.contract.config import ConfigError, Settings
from ml_worker.contract.errors import ErrorCode
from ml_worker.contract.jobs import Job, Result, now_ms
from ml_worker.contract.model_record import parse_model_ref


def test_defaults_match_the_documented_ones():
    s = Settings.from_env({})
    assert (s.max_batch, s.batch_wait_ms, s.max_queue, s.request_timeout_s) == (8, 5, 256, 10.0)
    assert (s.claim_idle_ms, s.cache_ttl_s, s.prediction_ttl_s) == (3000, 86_400, 7 * 86_400)
    assert (s.max_upload_bytes, s.max_pixels, s.backend) == (10 * 1024 * 1024, 40_000_000, "litert")
    assert s.api_keys == () and s.cors_origins == () and s.rate_limit_per_minute == 0


def test_values_are_parsed_by_type():
    s = Settings.from_env(
        {"MAX_BATCH": "16", "REQUEST_TIMEOUT_S": "4.5", "KEEP_FEEDBACK_IMAGES": "yes",
         "API_KEYS": "a, b,,", "ARTIFACTS_DIR": "/x", "CACHE_TTL_S": "0", "BACKEND": " tensorflow "}
    )  # fmt: skip
    assert s.max_batch == 16 and s.request_timeout_s == 4.5 and s.keep_feedback_images is True
    assert s.api_keys == ("a", "b") and s.artifacts_dir == Path("/x") and s.backend == "tensorflow"
    assert not s.cache_enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_BATCH": "eight"}, "MAX_BATCH"),
        ({"MAX_QUEUE": "0"}, "MAX_QUEUE must be positive"),
        ({"BATCH_WAIT_MS": "-1"}, "BATCH_WAIT_MS"),
        ({"BACKEND": "onnx"}, "BACKEND must be one of"),
        ({"KEEP_FEEDBACK_IMAGES": "maybe"}, "KEEP_FEEDBACK_IMAGES"),
        ({"CLAIM_IDLE_MS": "20000"}, "CLAIM_IDLE_MS must be shorter"),
        ({"HEARTBEAT_STALE_S": "0.5"}, "HEARTBEAT_STALE_S must exceed"),
        ({"MODELS": "efficientnet_lite0,../x"}, "MODELS"),
        ({"DEFAULT_MODEL": "efficientnet_lite0:1"}, "DEFAULT_MODEL is a model name"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_models_setting_lists_names_and_pinned_versions():
    s = Settings.from_env({"MODELS": "efficientnet_lite2, efficientnet_lite0:1", "DEFAULT_MODEL": "efficientnet_lite2"})
    assert s.models == ("efficientnet_lite2", "efficientnet_lite0:1") and s.default_model == "efficientnet_lite2"


def test_job_round_trips_through_stream_fields():
    tensor = np.random.default_rng(0).integers(0, 256, (260, 260, 3), dtype=np.uint8)
    job = Job("j1", "r1", now_ms() + 1000, "efficientnet_lite2", "1", tensor.tobytes())
    fields = {k.encode(): v.encode() if isinstance(v, str) else v for k, v in job.to_fields().items()}
    decoded = Job.from_fields(fields)
    assert decoded == job
    np.testing.assert_array_equal(decoded.array(260), tensor)
    assert not decoded.expired() and decoded.expired(job.deadline_ms + 1)


def test_a_tensor_made_for_another_input_size_is_refused():
    job = Job("j1", "r1", now_ms() + 1000, "efficientnet_lite2", "1", bytes(224 * 224 * 3))
    with pytest.raises(ValueError, match="260x260x3"):
        job.array(260)


@pytest.mark.parametrize(
    "fields",
    [
        {b"v": b"1", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1", b"tensor": bytes(224 * 224 * 3)},
        {b"v": b"2", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"x", b"model": b"m", b"version": b"1",
         b"tensor": b""},
        {b"v": b"2", b"job_id": b"j", b"request_id": b"r", b"deadline_ms": b"1", b"tensor": b""},
        {b"v": b"2", b"job_id": b"j"},
    ],
)  # fmt: skip
def test_malformed_jobs_are_rejected(fields):
    with pytest.raises(ValueError):
        Job.from_fields(fields)


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
