"""The custom-model contract: head weights across Redis, job fields for heads and embeddings, limits."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf_contract.heads import Head, softmax
from imgclf_contract.jobs import Job, Result, decode_vector, encode_vector
from imgclf_contract.model_record import ModelRecord
from imgclf_contract.training import label_problem, trainability_problem


def test_a_head_survives_its_redis_fields_exactly():
    rng = np.random.default_rng(0)
    head = Head(rng.normal(size=(1280, 7)).astype(np.float32), rng.normal(size=7).astype(np.float32))
    fields = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in head.to_fields().items()}
    back = Head.from_fields(fields)
    assert np.array_equal(back.weights, head.weights) and np.array_equal(back.bias, head.bias)
    embeddings = rng.normal(size=(3, 1280)).astype(np.float32)
    probabilities = back.probabilities(embeddings)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities, softmax(embeddings @ head.weights + head.bias))


def test_a_job_carries_its_head_and_embedding_request():
    job = Job("j", "r", 123, "efficientnet_lite0", "1", b"\0" * 12, head="flowers:3", embed=True)
    raw = {k.encode(): v.encode() for k, v in job.to_fields().items()}
    assert Job.from_fields(raw, job.tensor) == job
    plain = {k: v for k, v in raw.items() if k not in (b"head", b"embed")}  # from an older API
    assert Job.from_fields(plain, job.tensor).head == "" and not Job.from_fields(plain, job.tensor).embed


def test_an_embedding_crosses_json_exactly():
    vector = np.random.default_rng(1).normal(size=1280).astype(np.float32)
    result = Result("j", "m", "1", "litert", "w", "b", 1, 1.0, embedding=encode_vector(vector))
    assert np.array_equal(Result.from_json(result.to_json()).embedding_array(), vector)
    assert np.array_equal(decode_vector(encode_vector(vector)), vector)


def test_a_custom_record_runs_on_its_base():
    record = ModelRecord("flowers", "2", 224, "p", 3, [], base="efficientnet_lite0", base_version="1")
    assert record.is_custom and record.backbone == ("efficientnet_lite0", "1")
    base = ModelRecord("efficientnet_lite0", "1", 224, "p", 1000, [])
    assert not base.is_custom and base.backbone == ("efficientnet_lite0", "1")
    assert ModelRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("label", ["tulip", "Café ☕", "x" * 100, "<b>bold</b>"])
def test_free_text_labels_are_accepted(label):
    assert label_problem(label) is None


@pytest.mark.parametrize("label", ["", "   ", "x" * 101, "a\nb", "tab\there", "\x7f"])
def test_bad_labels_say_why(label):
    assert label_problem(label)


def test_trainability_needs_two_labels_of_five():
    assert "at least 2 labels" in trainability_problem({"a": 9})
    assert "'b'" in trainability_problem({"a": 9, "b": 4})
    assert trainability_problem({"a": 5, "b": 5}) is None
