"""The reference ACGAN networks (Keras `mnist_acgan.py`), layer for layer, in Keras 3.

Layers only: no losses, no optimizers, no training. `dtype` is a Keras dtype policy
("float32", "mixed_bfloat16", "mixed_float16"); the discriminator's two heads always
compute in float32 because a sigmoid or softmax in half precision saturates early
(the Keras mixed-precision guide's advice) - their weights are the same either way.
"""

from __future__ import annotations

import keras
from keras import layers

from acgan_cli.config import derive_seed

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


def build_generator(latent_size: int = 100, num_classes: int = NUM_CLASSES, dtype: str = "float32") -> keras.Model:
    """(z, class) -> image in [-1, 1], shape (28, 28, 1)."""
    latent = keras.Input(shape=(latent_size,), name="latent")
    image_class = keras.Input(shape=(1,), dtype="int32", name="image_class")

    # The class conditions z through a Hadamard product with its learned embedding.
    # The seed as printed lost the Flatten: Embedding gives (1, latent), z is (latent,).
    cls = layers.Embedding(
        num_classes, latent_size, embeddings_initializer="glorot_normal", dtype=dtype, name="class_embedding"
    )(image_class)
    cls = layers.Flatten(dtype=dtype, name="class_flatten")(cls)
    h = layers.Multiply(dtype=dtype, name="hadamard")([latent, cls])

    x = layers.Dense(3 * 3 * 384, activation="relu", dtype=dtype, name="project")(h)
    x = layers.Reshape((3, 3, 384), dtype=dtype, name="reshape")(x)
    # upsample to (7, 7, ...)
    x = layers.Conv2DTranspose(
        192, 5, strides=1, padding="valid", activation="relu", kernel_initializer="glorot_normal", dtype=dtype,
        name="deconv_7",
    )(x)
    x = layers.BatchNormalization(dtype=dtype, name="bn_7")(x)
    # upsample to (14, 14, ...)
    x = layers.Conv2DTranspose(
        96, 5, strides=2, padding="same", activation="relu", kernel_initializer="glorot_normal", dtype=dtype,
        name="deconv_14",
    )(x)
    x = layers.BatchNormalization(dtype=dtype, name="bn_14")(x)
    # upsample to (28, 28, 1)
    fake_image = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", activation="tanh", kernel_initializer="glorot_normal", dtype=dtype,
        name="deconv_28",
    )(x)
    return keras.Model([latent, image_class], fake_image, name="generator")


def build_discriminator(num_classes: int = NUM_CLASSES, dtype: str = "float32", seed: int | None = None) -> keras.Model:
    """image -> (P(real), P(class)); a plain LeakyReLU conv net as the reference proposes."""
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = image
    for i, (filters, strides) in enumerate([(32, 2), (64, 1), (128, 2), (256, 1)]):
        x = layers.Conv2D(filters, 3, padding="same", strides=strides, dtype=dtype, name=f"conv_{i + 1}")(x)
        x = layers.LeakyReLU(negative_slope=0.2, dtype=dtype, name=f"leaky_{i + 1}")(x)
        # Seeded per layer so that a run's dropout masks follow from the run's seed,
        # each from its own stream (config.derive_seed says why).
        drop_seed = None if seed is None else derive_seed(seed, "dropout", i)
        x = layers.Dropout(0.3, seed=drop_seed, dtype=dtype, name=f"dropout_{i + 1}")(x)
    features = layers.Flatten(dtype=dtype, name="flatten")(x)

    # generation: does the image look real? auxiliary: which class is it?
    fake = layers.Dense(1, activation="sigmoid", dtype="float32", name="generation")(features)
    aux = layers.Dense(num_classes, activation="softmax", dtype="float32", name="auxiliary")(features)
    return keras.Model(image, [fake, aux], name="discriminator")
