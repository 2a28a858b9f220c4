"""Training's pure parts: the stratified split, class weights, the report; top-k over few classes."""

from __future__ import annotations

import numpy as np

from imgclf_contract.heads import Head
from ml_worker.backends import top_k
from ml_worker.training import Examples, class_weights, examples, report, stratified_split


def test_the_split_keeps_a_fifth_of_each_label_out_and_is_seeded():
    targets = np.array([0] * 20 + [1] * 5 + [2] * 4 + [3] * 11)
    train, held = stratified_split(targets, 0.2)
    assert sorted(np.bincount(targets[held], minlength=4)) == sorted([4, 1, 0, 2])
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(targets)
    again = stratified_split(targets, 0.2)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], held)


def test_class_weights_balance_the_labels():
    weights = class_weights(np.array([0] * 30 + [1] * 10), 2)
    assert weights[1] == 3 * weights[0]
    assert abs((30 * weights[0] + 10 * weights[1]) / 40 - 1.0) < 1e-9


def test_examples_are_ordered_by_sha256_and_labels_by_name():
    vec = np.ones(4, dtype="<f4").tobytes()
    data = examples({"b": ("zebra", vec), "a": ("ant", vec), "c": ("ant", vec)})
    assert data.labels == ["ant", "zebra"] and data.targets.tolist() == [0, 1, 0]


def test_the_report_counts_precision_recall_and_confusions():
    # a head that always answers label 0: recall 1 for it, 0 for the other
    head = Head(np.zeros((2, 2), np.float32), np.array([5.0, 0.0], np.float32))
    data = Examples(np.zeros((4, 2), np.float32), np.array([0, 0, 1, 1]), ["cat", "dog"])
    out = report(head, data, np.array([0, 2]), np.array([1, 3]))
    assert out["top1"] == 0.5 and out["top5"] == 1.0
    assert out["per_label"]["cat"] == {"precision": 0.5, "recall": 1.0, "support": 1}
    assert out["per_label"]["dog"] == {"precision": None, "recall": 0.0, "support": 1}
    assert out["confusions"] == [{"label": "dog", "predicted": "cat", "count": 1}]


def test_top_k_over_fewer_classes_than_k():
    assert [i for i, _ in top_k(np.array([0.2, 0.5, 0.3]), 10)] == [1, 2, 0]
