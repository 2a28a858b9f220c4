"""Training a custom head on stored embeddings: split, fit, report (no Redis here).

A softmax layer on the base model's pooled embedding, fitted with Keras: a
stratified hold-out split, class weights against imbalance, early stopping on
the hold-out loss (best weights restored) and a fixed seed, so the same data
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
    """Train the head; ``on_epoch(epoch, hold-out accuracy)`` after each epoch. Returns the head and its report."""
    import keras

    keras.utils.set_random_seed(SEED)
    train, held = stratified_split(data.targets, holdout)
    num_classes = len(data.labels)
    inputs = keras.Input((data.embeddings.shape[1],))
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(L2))(
        inputs
    )
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data.embeddings, data.targets
    model.fit(
        x[train], y[train], validation_data=(x[held], y[held]), epochs=MAX_EPOCHS, batch_size=BATCH_SIZE,
        class_weight=class_weights(y[train], num_classes), verbose=0, shuffle=True,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True),
                   keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: on_epoch(e + 1, logs["val_accuracy"]))],
    )  # fmt: skip
    weights, bias = model.layers[-1].get_weights()
    head = Head(weights.astype(np.float32), bias.astype(np.float32))
    return head, report(head, data, train, held)


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
        per_label[label] = {"precision": round(hits / said, 4) if said else None,
                            "recall": round(hits / real, 4) if real else None, "support": real}  # fmt: skip
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
