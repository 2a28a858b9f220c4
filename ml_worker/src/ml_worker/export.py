"""A custom model as one standalone file: backbone + head fused into a .tflite, probabilities out.

The bundle (zip) holds ``model.tflite`` (uint8 NHWC RGB in, the same preprocessing
as the service, ``probabilities`` out), ``labels.txt`` (one label per line, in
class-index order) and ``model_card.json``. Before it is stored, its scores on
the golden photos are checked against the service's own path (the base .tflite's
embedding, then the head) to ``MAX_EXPORT_ERROR``.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from imgclf_contract import keys, logs, redis_client
from imgclf_contract.heads import Head, load_head
from imgclf_contract.model_record import ModelRecord, parse_model_ref
from ml_worker import artifacts, golden
from ml_worker.build import export_tflite
from ml_worker.settings import TrainerSettings

log = logging.getLogger("ml_worker.export")

MAX_EXPORT_ERROR = 1e-4
PROBABILITIES = "probabilities"


class ExportCheckFailed(RuntimeError):
    """The fused model does not reproduce the service's scores."""


def fused_tflite(base: artifacts.ModelArtifacts, head: Head, work: Path) -> Path:
    """Load the base Keras model, put the head on its embedding, convert to .tflite."""
    import keras

    backbone = keras.models.load_model(base.directory / artifacts.KERAS, compile=False)
    inputs = keras.Input(backbone.input_shape[1:], dtype="uint8", name="image")
    dense = keras.layers.Dense(head.weights.shape[1], activation="softmax", name=PROBABILITIES)
    probabilities = dense(backbone(inputs)[artifacts.EMBEDDING])
    dense.set_weights([head.weights, head.bias])
    model = keras.Model(inputs, {PROBABILITIES: probabilities})
    model.export(str(work / "saved_model"), format="tf_saved_model", verbose=False)
    export_tflite(work / "saved_model", work / artifacts.TFLITE)
    return work / artifacts.TFLITE


def run_fused(path: Path, batch: np.ndarray) -> np.ndarray:
    """Probabilities from a fused .tflite (LiteRT, what a user of the export runs)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return np.asarray(runner(**{name: batch})[PROBABILITIES])


def served_probabilities(base: artifacts.ModelArtifacts, head: Head, batch: np.ndarray) -> np.ndarray:
    """What the service answers: the base .tflite's embedding, then the head."""
    from ml_worker.backends.litert import LiteRTBackend

    return head.probabilities(LiteRTBackend(base.tflite, num_threads=1).run(batch).embedding)


def bundle(record: ModelRecord, base: artifacts.ModelArtifacts, head: Head) -> bytes:
    """The zip a person downloads; raises ExportCheckFailed if it would disagree with the service."""
    with tempfile.TemporaryDirectory(prefix="imgclf-export-") as tmp:
        path = fused_tflite(base, head, Path(tmp))
        batch = golden.tensors(base.input_size)
        error = float(np.abs(run_fused(path, batch) - served_probabilities(base, head, batch)).max())
        if error > MAX_EXPORT_ERROR:
            raise ExportCheckFailed(f"the fused .tflite differs from the service by {error:.2e}")
        card = {
            "name": record.name,
            "version": record.version,
            "base": f"{record.base}:{record.base_version}",
            "input": {"shape": [None, base.input_size, base.input_size, 3], "dtype": "uint8", "layout": "NHWC RGB"},
            "preprocessing": record.preprocessing,
            "output": f"{PROBABILITIES}: softmax over {record.num_classes} labels",
            "labels": [label["name"] for label in record.labels],
            "holdout": record.report,
            "dataset_fingerprint": record.dataset_fingerprint,
            "created_at": record.created_at,
            "max_error_vs_service": error,
        }
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, artifacts.TFLITE)
            zf.writestr("labels.txt", "".join(label["name"] + "\n" for label in record.labels))
            zf.writestr(artifacts.CARD, json.dumps(card, indent=2))
        return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """``python -m ml_worker.export NAME:VERSION``: build a published custom model's bundle into Redis
    (the trainer runs it in a child process, so a training never waits for a conversion)."""
    settings = TrainerSettings.from_env()
    logs.configure(settings.log_level)
    name, version = parse_model_ref((argv or sys.argv[1:])[0])
    client = redis_client.connect(settings, socket_timeout=30)
    raw, head = client.get(keys.model(name, version)), load_head(client, name, version)
    if raw is None or head is None:
        log.warning("nothing to export", extra={"model": name, "version": version})
        return 1
    record = ModelRecord.from_json(raw)
    try:
        base = artifacts.load(settings.artifacts_dir, record.base, record.base_version)
        client.set(keys.export(name, version), bundle(record, base, head))
    except Exception:  # the model is served all the same; only the download is missing
        log.exception("export failed", extra={"model": name, "version": version})
        return 1
    log.info("exported", extra={"model": name, "version": version})
    return 0


if __name__ == "__main__":
    sys.exit(main())
