"""Port a PyTorch EfficientNet-Lite state dict onto the Keras network of the same variant.

Every Keras weight must be assigned exactly once and every source tensor used
(BatchNorm's ``num_batches_tracked`` aside), so a renamed or missing tensor
fails the build instead of leaving random weights behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import keras
import numpy as np

from ml_worker.pth_reader import WeightsFileError


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 0, 1)  # (C,1,kh,kw) -> (kh,kw,C,1)


def _bn(prefix: str) -> list[str]:
    """Keras BatchNormalization weight order: gamma, beta, moving mean, moving variance."""
    return [f"{prefix}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]


def layer_sources(model: keras.Model) -> Iterator[tuple[str, list[str], Callable | None]]:
    """Yield (keras layer, torch tensor names, transform) for every weighted layer."""
    yield "stem_conv", ["_conv_stem.weight"], _conv
    yield "stem_bn", _bn("_bn0"), None
    for layer in model.layers:
        if not layer.name.startswith("block") or not layer.weights:
            continue
        block, _, part = layer.name.partition("_")
        src = f"_blocks.{block.removeprefix('block')}"
        mapping = {
            "expand_conv": ([f"{src}._expand_conv.weight"], _conv),
            "expand_bn": (_bn(f"{src}._bn0"), None),
            "dwconv": ([f"{src}._depthwise_conv.weight"], _depthwise),
            "dw_bn": (_bn(f"{src}._bn1"), None),
            "project_conv": ([f"{src}._project_conv.weight"], _conv),
            "project_bn": (_bn(f"{src}._bn2"), None),
        }
        names, transform = mapping[part]
        yield layer.name, names, transform
    yield "head_conv", ["_conv_head.weight"], _conv
    yield "head_bn", _bn("_bn1"), None
    yield "logits", ["_fc.weight", "_fc.bias"], lambda w: w.T


def check_state_dict(state: Mapping[str, np.ndarray], expected_parameters: int) -> None:
    """Fail unless the checkpoint holds the pinned number of parameters (a different variant would not)."""
    params = sum(int(v.size) for v in state.values())
    if params != expected_parameters:
        raise WeightsFileError(f"expected {expected_parameters} parameters, found {params} in {len(state)} tensors")


def load_into(model: keras.Model, state: Mapping[str, np.ndarray], expected_parameters: int) -> None:
    """Assign every Keras weight from ``state``; raise on any mismatch."""
    check_state_dict(state, expected_parameters)
    used: set[str] = set()
    for layer_name, names, transform in layer_sources(model):
        layer = model.get_layer(layer_name)
        arrays = [state[n] for n in names]
        if transform is not None:
            arrays = [transform(arrays[0]), *arrays[1:]]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [a.shape for a in arrays] != expected:
            raise WeightsFileError(f"{layer_name}: shapes {[a.shape for a in arrays]} != {expected}")
        layer.set_weights(arrays)
        used.update(names)
    unused = {k for k in state if not k.endswith("num_batches_tracked")} - used
    assigned = sum(len(layer.weights) for layer in model.layers)
    if unused or len(used) != assigned:
        raise WeightsFileError(f"weights not ported: unused={sorted(unused)[:5]} assigned={assigned}")
