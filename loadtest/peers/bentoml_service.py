"""The BentoML peer `make bench` measures this service against (runs in .venv-peers, not .venv).

What a person would write to serve the same model with BentoML: the service's own .tflite in
LiteRT, the contract's preprocessing (imgclf_contract, installed in the peer's venv), two
worker processes with one inference thread each (two cores), and a batchable API so BentoML's
adaptive batching merges concurrent requests. Answers the top 5 labels with softmax scores.
Configured by `loadtest/peers/bentoml_peer.py` through PEER_* environment variables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bentoml
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from imgclf_contract.preprocess import preprocess

TFLITE = os.environ.get("PEER_TFLITE", "")
LABELS = os.environ.get("PEER_LABELS", "")
INPUT_SIZE = int(os.environ.get("PEER_INPUT_SIZE", "224"))
MAX_PIXELS = int(os.environ.get("PEER_MAX_PIXELS", "40000000"))
WORKERS = int(os.environ.get("PEER_WORKERS", "2"))
MAX_BATCH = int(os.environ.get("PEER_MAX_BATCH", "16"))
TOP_K = 5


@bentoml.service(workers=WORKERS, traffic={"timeout": 60})
class Classifier:
    def __init__(self) -> None:
        self.interpreter = Interpreter(model_path=TFLITE, num_threads=1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.logits = self.interpreter.get_signature_runner().get_output_details()["logits"]["index"]
        self.batch = 0
        self.labels = [entry["name"] for entry in json.loads(Path(LABELS).read_text())]

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self.batch:
            self.interpreter.resize_tensor_input(self.input, batch.shape, strict=False)
            self.interpreter.allocate_tensors()
            self.batch = batch.shape[0]
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.logits).copy()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=10_000)
    def classify(self, images: list[Path]) -> list[dict]:
        batch = np.stack([preprocess(p.read_bytes(), MAX_PIXELS, size=INPUT_SIZE).tensor for p in images])
        logits = self._logits(batch)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        answers = []
        for row in probabilities:
            best = np.argsort(row)[::-1][:TOP_K]
            answers.append({"predictions": [{"label": self.labels[i], "score": float(row[i])} for i in best]})
        return answers
