"""Training a custom head on stored embeddings: split, fit, report (no Redis here).

A softmax layer on the base model's pooled embedding, fitted with Keras: a
stratified hold-out split, class weights against imbalance, early stopping on
the hold-out loss (patience 10 epochs, best weights restored) and a fixed seed, so the same data
gives the same model. The report is computed with the very function the
workers serve with (``Head.probabilities``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imgclf_contract.heads import Head

SEED = 1234
MAX_EPOCHS = 200
PATIENCE = 10
MIN_DELTA = 1e-3  # a smaller fall of the hold-out loss is not progress
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
L2 = 1e-4
MAX_CONFUSIONS = 10


@dataclass(frozen=True)
class Examples:
    """Embeddings (n, d) float32 with their label indices, sorted by sha256 (a stable order)."""

    embeddings: np.ndarray
    targets: np.ndarray
    labels: list[str]


def examples(rows: dict[str, tuple[str, bytes]]) -> Examples:
    """sha256 -> (label, float32 embedding bytes) -> Examples with labels sorted by name."""
    shas = sorted(rows)
    labels = sorted({rows[s][0] for s in shas})
    index = {label: i for i, label in enumerate(labels)}
    embeddings = np.stack([np.frombuffer(rows[s][1], dtype="<f4") for s in shas]).astype(np.float32)
    return Examples(embeddings, np.array([index[rows[s][0]] for s in shas], dtype=np.int64), labels)


def stratified_split(targets: np.ndarray, holdout: float, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, hold-out) indices: round(holdout x n) of each label kept out, at least one when it has >= 5."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == label))
        k = min(max(1, round(len(idx) * holdout)), len(idx) - 1) if len(idx) >= 5 else 0
        held.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


def class_weights(targets: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse frequency, 1.0 on average: a rare label weighs as much as a common one."""
    counts = np.bincount(targets, minlength=num_classes)
    return {c: float(len(targets) / (num_classes * counts[c])) for c in range(num_classes) if counts[c]}


def fit(data: Examples, holdout: float, on_epoch: Callable[[int, float], None]) -> tuple[Head, dict]:
    """Train the head; ``on_epoch(epoch, hold-out accuracy)`` after each epoch. Returns the head and its report.

    A Keras Dense softmax layer, Adam and Keras' loss, stepped by a compiled ``tf.function``
    (``Model.fit`` costs some 250 ms per epoch in bookkeeping here, the steps themselves a few ms);
    the hold-out is scored with the serving function itself after every epoch.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    train, held = stratified_split(data.targets, holdout)
    num_classes = len(data.labels)
    layer = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(L2))
    model = keras.Sequential([keras.Input((data.embeddings.shape[1],)), layer])
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    loss = keras.losses.SparseCategoricalCrossentropy()
    weights = class_weights(data.targets[train], num_classes)
    sample_weight = np.array([weights[t] for t in data.targets], dtype=np.float32)

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True), sample_weight=w) + tf.add_n(model.losses)
        optimizer.apply_gradients(
            zip(tape.gradient(value, model.trainable_variables), model.trainable_variables, strict=True)
        )

    rng = np.random.default_rng(SEED)
    x, y = data.embeddings, data.targets
    best = (np.inf, layer.get_weights(), 0)
    for epoch in range(1, MAX_EPOCHS + 1):
        order = rng.permutation(train)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            step(x[batch], y[batch], sample_weight[batch])
        head = Head(*layer.get_weights())
        probabilities = head.probabilities(x[held])
        held_loss = float(-np.log(probabilities[np.arange(len(held)), y[held]] + 1e-12).mean())
        if held_loss < best[0] - MIN_DELTA:
            best = (held_loss, layer.get_weights(), epoch)
        on_epoch(epoch, float((probabilities.argmax(axis=1) == y[held]).mean()))
        if epoch - best[2] >= PATIENCE:  # early stopping on the hold-out loss; the best weights are kept
            break
    kernel, bias = best[1]
    head = Head(kernel.astype(np.float32), bias.astype(np.float32))
    return head, {**report(head, data, train, held), "epochs": epoch, "best_epoch": best[2]}


def report(head: Head, data: Examples, train: np.ndarray, held: np.ndarray) -> dict:
    """Hold-out top-1 (and top-5), per-label precision/recall and the largest confusions."""
    probabilities = head.probabilities(data.embeddings[held])
    truth = data.targets[held]
    predicted = probabilities.argmax(axis=1)
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    per_label = {}
    for i, label in enumerate(data.labels):
        hits = int(((predicted == i) & (truth == i)).sum())
        said, real = int((predicted == i).sum()), int((truth == i).sum())
        per_label[label] = {
            "precision": round(hits / said, 4) if said else None,
            "recall": round(hits / real, 4) if real else None,
            "support": real,
        }
    confusions = Counter((data.labels[t], data.labels[p]) for t, p in zip(truth, predicted, strict=True) if t != p)
    return {
        "top1": round(float((predicted == truth).mean()), 4),
        "top5": round(float((top5 == truth[:, None]).any(axis=1).mean()), 4),
        "holdout_images": len(held),
        "train_images": len(train),
        "per_label": per_label,
        "confusions": [
            {"label": t, "predicted": p, "count": n} for (t, p), n in confusions.most_common(MAX_CONFUSIONS)
        ],
    }
