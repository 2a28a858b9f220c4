"""The worker's own settings: documented defaults and the checks that stop a bad start."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf_contract.settings import ConfigError
from ml_worker.settings import DEFAULT_ARTIFACTS, WorkerSettings


def test_defaults_match_the_documented_ones():
    s = WorkerSettings.from_env({})
    assert (s.max_batch, s.batch_wait_ms, s.claim_idle_ms, s.heartbeat_interval_s) == (8, 5, 3000, 1.0)
    assert (s.backend, s.num_threads, s.batch_num_threads, s.parallel_batches, s.models) == ("litert", 2, 1, 1, ())
    assert s.imagenet_sample_dir == Path(__file__).resolve().parents[2].parent / "shared/datasets/imagenet-sample-500"
    assert s.artifacts_dir == DEFAULT_ARTIFACTS == Path(__file__).resolve().parents[1] / "artifacts"
    assert s.reply_ttl_s == 15 and s.resolved_worker_id


def test_values_are_parsed_by_type():
    s = WorkerSettings.from_env({"MAX_BATCH": "16", "ARTIFACTS_DIR": "/x", "BACKEND": " tensorflow "})
    assert s.max_batch == 16 and s.artifacts_dir == Path("/x") and s.backend == "tensorflow"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_BATCH": "eight"}, "MAX_BATCH"),
        ({"MAX_BATCH": "0"}, "MAX_BATCH must be positive"),
        ({"BATCH_WAIT_MS": "-1"}, "BATCH_WAIT_MS"),
        ({"BACKEND": "onnx"}, "BACKEND must be one of"),
        ({"CLAIM_IDLE_MS": "20000"}, "CLAIM_IDLE_MS must be shorter"),
        ({"HEARTBEAT_STALE_S": "0.5"}, "HEARTBEAT_STALE_S must exceed"),
        ({"MODELS": "efficientnet_lite0,../x"}, "MODELS"),
        ({"DEFAULT_MODEL": "efficientnet_lite0:1"}, "DEFAULT_MODEL must be a model name"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        WorkerSettings.from_env(env)


def test_models_setting_lists_names_and_pinned_versions():
    s = WorkerSettings.from_env({"MODELS": "efficientnet_lite2, efficientnet_lite0:1"})
    assert s.models == ("efficientnet_lite2", "efficientnet_lite0:1")
