"""EfficientNet-Lite0 as plain Keras functions (after keras.applications.efficientnet).

Lite differs from EfficientNet-B0 in ReLU6 instead of swish and no
squeeze-excitation, which is what makes it quantisation- and mobile-friendly.
Layer names encode the PyTorch block index so the weight port is a name lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from imgclf_contract.preprocess import INPUT_SIZE, NORM_MEAN, NORM_STD

BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000
DROPOUT_RATE = 0.2


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters: int


STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


def _bn_relu6(x, name: str, activation: bool = True):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x) if activation else x


def mbconv_block(x, index: int, in_filters: int, stage: Stage, stride: int):
    """Inverted residual: 1x1 expand, depthwise, 1x1 project, add when shapes match."""
    name = f"block{index}"
    inputs = x
    if stage.expand != 1:
        x = layers.Conv2D(in_filters * stage.expand, 1, use_bias=False, name=f"{name}_expand_conv")(x)
        x = _bn_relu6(x, f"{name}_expand")
    x = layers.DepthwiseConv2D(stage.kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = _bn_relu6(x, f"{name}_dw")
    x = layers.Conv2D(stage.filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn_relu6(x, f"{name}_project", activation=False)
    if stride == 1 and in_filters == stage.filters:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def efficientnet_lite0() -> keras.Model:
    """uint8 NHWC RGB in, 1000 ImageNet logits out; normalisation is part of the graph."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / NORM_STD, offset=-NORM_MEAN / NORM_STD, name="normalize")(inputs)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn_relu6(x, "stem")
    filters, index = STEM_FILTERS, 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            x = mbconv_block(x, index, filters, stage, stage.stride if repeat == 0 else 1)
            filters, index = stage.filters, index + 1
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv")(x)
    x = _bn_relu6(x, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(DROPOUT_RATE, name="dropout")(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, logits, name="efficientnet_lite0")
