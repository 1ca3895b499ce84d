"""`tf.data` input pipelines: shuffled, augmented training batches and plain evaluation batches.

Augmentation runs on whole batches inside `tf.data` (vectorised ops, prefetched), so the two cores
spend their time in the model rather than in per-image Python.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from classroom_contract import NUM_EMOTIONS

from classroom_training.data import Split


def _augmenter(seed: int) -> keras.Sequential:
    """Flip, shift, rotate and zoom: faces in class are off-centre, tilted and at varying distance.

    `torch_trainer.augment` draws from the same ranges on a GPU.
    """
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
            keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 2),
            keras.layers.RandomZoom((-0.1, 0.1), fill_mode="reflect", seed=seed + 3),
        ],
        name="augment",
    )


def _random_erasing(images: tf.Tensor, probability: float = 0.5, max_side: int = 20) -> tf.Tensor:
    """Zero a random square per image (Zhong et al. 2017): hands, hair and glasses occlude faces."""
    batch = tf.shape(images)[0]
    side = tf.random.uniform([batch, 1, 1, 1], 6, max_side, dtype=tf.int32)
    cy = tf.random.uniform([batch, 1, 1, 1], 0, 48, dtype=tf.int32)
    cx = tf.random.uniform([batch, 1, 1, 1], 0, 48, dtype=tf.int32)
    rows = tf.reshape(tf.range(48), [1, 48, 1, 1])
    cols = tf.reshape(tf.range(48), [1, 1, 48, 1])
    inside = (tf.abs(rows - cy) * 2 < side) & (tf.abs(cols - cx) * 2 < side)
    apply = tf.random.uniform([batch, 1, 1, 1]) < probability
    return tf.where(inside & apply, tf.zeros_like(images), images)


def training_dataset(
    split: Split, batch_size: int, seed: int = 1337, targets: np.ndarray | None = None
) -> tf.data.Dataset:
    """Shuffled, augmented batches; `targets` (m, 7) replaces the one-hot labels (e.g. FER+ soft labels)."""
    augment = _augmenter(seed)

    def _augment(images, labels):
        x = augment(tf.cast(images, tf.float32), training=True)
        x = _random_erasing(x)
        x = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        return x, labels

    labels = tf.one_hot(split.labels, NUM_EMOTIONS) if targets is None else tf.constant(targets, tf.float32)
    return (
        tf.data.Dataset.from_tensor_slices((split.images, labels))
        .shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_dataset(split: Split, batch_size: int = 256) -> tf.data.Dataset:
    labels = tf.one_hot(split.labels, NUM_EMOTIONS)
    return tf.data.Dataset.from_tensor_slices((split.images, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
