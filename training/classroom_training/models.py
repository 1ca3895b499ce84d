"""Build the model: the seed baseline and the default network, both taking raw uint8 crops.

Scaling to [0, 1] is the first layer of every model (Keras-examples style), so the exported graph
carries its own preprocessing and a client can only ever send raw pixels.
"""

from __future__ import annotations

import keras
from classroom_contract import CROP_SIZE, NUM_EMOTIONS
from keras import layers

INPUT_SHAPE = (CROP_SIZE, CROP_SIZE, 1)


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    raw = keras.Input(shape=INPUT_SHAPE, dtype="uint8", name="crops")
    x = layers.Rescaling(1.0 / 255.0, name="scale_to_unit")(layers.Activation("linear", dtype="float32")(raw))
    return raw, x


def make_seed_model() -> keras.Model:
    """The first version's network: 4 conv blocks, 2 dense blocks (the ~60% baseline)."""
    raw, x = _inputs()
    for filters, kernel in ((64, 3), (128, 5), (512, 3), (512, 3)):
        x = layers.Conv2D(filters, kernel, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = layers.Dense(units)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(NUM_EMOTIONS, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(raw, outputs, name="seed")


def _conv_bn(x, filters: int, kernel: int, weight_decay: float, name: str, bn_name: str):
    x = layers.Conv2D(
        filters, kernel, padding="same", use_bias=False, kernel_regularizer=keras.regularizers.l2(weight_decay),
        name=name,
    )(x)  # fmt: skip
    return layers.BatchNormalization(name=bn_name)(x)


def _residual_stage(x, filters: int, weight_decay: float, number: int):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut, then 2x2 max-pool.

    Layers are named `stage<N>_conv1`, `..._bn1` and so on: `torch_trainer` keys weights by these.
    """
    name = f"stage{number}"
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, weight_decay, f"{name}_shortcut_conv", f"{name}_shortcut_bn")
    x = layers.Activation("relu")(_conv_bn(x, filters, 3, weight_decay, f"{name}_conv1", f"{name}_bn1"))
    x = _conv_bn(x, filters, 3, weight_decay, f"{name}_conv2", f"{name}_bn2")
    x = layers.Activation("relu")(layers.Add()([x, shortcut]))
    return layers.MaxPooling2D(2)(x)


def make_default_model(width: int = 48, weight_decay: float = 5e-4, dropout: float = 0.4) -> keras.Model:
    """A compact residual VGG: a stem conv, four residual stages (48->3 px), global pooling.

    Sized by measurement to train at a useful speed on 2 CPU cores; widths double per stage.
    """
    raw, x = _inputs()
    x = layers.Activation("relu")(_conv_bn(x, width, 3, weight_decay, "stem_conv", "stem_bn"))
    for number, multiplier in enumerate((1, 2, 4, 8), start=1):
        x = _residual_stage(x, width * multiplier, weight_decay, number)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_EMOTIONS, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(raw, outputs, name="default")


# ---------------------------------------------------------------- the efficient family ("fast")

FAST_BLOCKS = ("plain", "separable")


def _separable_bn(x, filters: int, weight_decay: float, name: str):
    """Xception-style: a 3x3 depthwise conv, a 1x1 pointwise conv, then one BatchNorm (`<name>_dw/_pw/_bn`)."""
    regularizer = keras.regularizers.l2(weight_decay)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, depthwise_regularizer=regularizer, name=f"{name}_dw")(
        x
    )
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_regularizer=regularizer, name=f"{name}_pw")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _fast_block(x, filters: int, block: str, weight_decay: float, name: str):
    """Two convs (plain 3x3, or depthwise-separable) with an identity or 1x1-projection shortcut."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, weight_decay, f"{name}_shortcut_conv", f"{name}_shortcut_bn")
    if block == "plain":
        x = layers.Activation("relu")(_conv_bn(x, filters, 3, weight_decay, f"{name}_conv1", f"{name}_bn1"))
        x = _conv_bn(x, filters, 3, weight_decay, f"{name}_conv2", f"{name}_bn2")
    else:
        x = layers.Activation("relu")(_separable_bn(x, filters, weight_decay, f"{name}_sep1"))
        x = _separable_bn(x, filters, weight_decay, f"{name}_sep2")
    return layers.Activation("relu")(layers.Add()([x, shortcut]))


def make_fast_model(
    width: int = 32, block: str = "plain", depth: int = 1, weight_decay: float = 5e-4, dropout: float = 0.4
) -> keras.Model:
    """The efficient family: a stride-2 stem (48 -> 24 px), then stages at 24, 12, 6 and 3 px.

    Nothing but the stem's one-channel conv runs at 48x48, which is where the default network
    spends 30% of its work. Stage n has `depth` blocks of `width * 2**(n-1)` channels; blocks are
    plain 3x3 residual pairs or depthwise-separable ones (`block`), a 2x2 max-pool follows stages
    1-3. The padding is explicit and symmetric so the PyTorch twin (`torch_trainer.FastNet`) is exact.
    """
    if block not in FAST_BLOCKS:
        raise ValueError(f"block must be one of {FAST_BLOCKS}, got {block!r}")
    raw, x = _inputs()
    x = layers.ZeroPadding2D(1, name="stem_pad")(x)
    x = layers.Conv2D(
        width, 3, strides=2, use_bias=False, kernel_regularizer=keras.regularizers.l2(weight_decay), name="stem_conv"
    )(x)
    x = layers.Activation("relu")(layers.BatchNormalization(name="stem_bn")(x))
    for number in range(1, 5):
        for index in range(1, depth + 1):
            x = _fast_block(x, width * 2 ** (number - 1), block, weight_decay, f"stage{number}_block{index}")
        if number < 4:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_EMOTIONS, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(raw, outputs, name="fast")


def parse_fast_spec(spec: str) -> dict:
    """`plain-w32-d1` / `separable-w48-d2` -> make_fast_model's arguments (the run and CLI name)."""
    try:
        block, width, depth = spec.split("-")
        if not (width.startswith("w") and depth.startswith("d")) or block not in FAST_BLOCKS:
            raise ValueError
        return {"block": block, "width": int(width[1:]), "depth": int(depth[1:])}
    except ValueError:
        raise ValueError(f"a fast spec is <plain|separable>-w<width>-d<depth>, got {spec!r}") from None
