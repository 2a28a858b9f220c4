"""The EfficientNet-Lite family as plain Keras functions (after keras.applications.efficientnet).

Lite differs from EfficientNet-B0..B4 in ReLU6 instead of swish, no
squeeze-excitation, and a stem and head that do not scale with the model,
which is what makes it quantisation- and mobile-friendly. One base network
(``BASE_STAGES``) is scaled by each variant's coefficients: width multiplies
the filters, depth the repeats of the inner stages, resolution is the input size.
Layer names encode the PyTorch block index so the weight port is a name lookup.

Every model has two outputs: the ImageNet ``logits`` and the pooled 1280-d
``embedding`` they are computed from, so one backbone pass can feed any
number of small heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import keras
from keras import layers

from imgclf_contract.preprocess import NORM_MEAN, NORM_STD
from ml_worker.artifacts import EMBEDDING, LOGITS

BN_EPSILON = 1e-3
STEM_FILTERS = 32  # Lite: not scaled by width
HEAD_FILTERS = 1280  # Lite: not scaled by width; also the embedding's size
NUM_CLASSES = 1000
FILTER_DIVISOR = 8


@dataclass(frozen=True)
class Variant:
    """One member of the family: its compound-scaling coefficients and classifier dropout."""

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("efficientnet_lite0", width=1.0, depth=1.0, resolution=224, dropout=0.2),
        Variant("efficientnet_lite1", width=1.0, depth=1.1, resolution=240, dropout=0.2),
        Variant("efficientnet_lite2", width=1.1, depth=1.2, resolution=260, dropout=0.3),
    )
}


@dataclass(frozen=True)
class Stage:
    """Blocks of one resolution: ``repeats`` inverted residuals, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters: int


BASE_STAGES: tuple[Stage, ...] = (
    Stage(repeats=1, kernel=3, stride=1, expand=1, filters=16),
    Stage(repeats=2, kernel=3, stride=2, expand=6, filters=24),
    Stage(repeats=2, kernel=5, stride=2, expand=6, filters=40),
    Stage(repeats=3, kernel=3, stride=2, expand=6, filters=80),
    Stage(repeats=3, kernel=5, stride=1, expand=6, filters=112),
    Stage(repeats=4, kernel=5, stride=2, expand=6, filters=192),
    Stage(repeats=1, kernel=3, stride=1, expand=6, filters=320),
)


def round_filters(filters: int, width: float) -> int:
    """Scale by width and round to a multiple of 8, never more than 10 % below the scaled value."""
    scaled = filters * width
    rounded = max(FILTER_DIVISOR, int(scaled + FILTER_DIVISOR / 2) // FILTER_DIVISOR * FILTER_DIVISOR)
    return rounded + FILTER_DIVISOR if rounded < 0.9 * scaled else rounded


def scaled_stages(variant: Variant) -> tuple[Stage, ...]:
    """BASE_STAGES for one variant; Lite keeps the first and last stage's single block."""
    last = len(BASE_STAGES) - 1
    return tuple(
        replace(
            stage,
            filters=round_filters(stage.filters, variant.width),
            repeats=stage.repeats if i in (0, last) else math.ceil(stage.repeats * variant.depth),
        )
        for i, stage in enumerate(BASE_STAGES)
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


def backbone(x, variant: Variant):
    """Stem, the scaled stages and the 1x1 head conv: the feature map before pooling."""
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn_relu6(x, "stem")
    filters, index = STEM_FILTERS, 0
    for stage in scaled_stages(variant):
        for repeat in range(stage.repeats):
            x = mbconv_block(x, index, filters, stage, stage.stride if repeat == 0 else 1)
            filters, index = stage.filters, index + 1
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv")(x)
    return _bn_relu6(x, "head")


def efficientnet_lite(variant: Variant) -> keras.Model:
    """uint8 NHWC RGB in; ``logits`` (1000) and ``embedding`` (1280) out; normalisation is in the graph."""
    inputs = keras.Input((variant.resolution, variant.resolution, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / NORM_STD, offset=-NORM_MEAN / NORM_STD, name="normalize")(inputs)
    embedding = layers.GlobalAveragePooling2D(name="avg_pool")(backbone(x, variant))
    x = layers.Dropout(variant.dropout, name="dropout")(embedding)
    logits = layers.Dense(NUM_CLASSES, name=LOGITS)(x)
    return keras.Model(inputs, {LOGITS: logits, EMBEDDING: embedding}, name=variant.name)
