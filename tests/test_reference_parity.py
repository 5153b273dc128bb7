"""acgan's fused step against the reference program itself, run on Keras 2 (tf_keras).

Same weights, same inputs, dropout off (its masks are the only randomness the two
cannot share): every loss of several consecutive steps must agree, which pins down
targets, sample weights, reductions, inference-mode fakes and which weights train.
"""

from __future__ import annotations

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")
gan = pytest.importorskip("acgan_cli.gan")
import tensorflow as tf  # noqa: E402

from acgan_cli.data import scale  # noqa: E402
from tests.conftest import make_arrays  # noqa: E402

L = tf_keras.layers
LATENT, BATCH = 8, 8


def reference_models():
    """mnist_acgan.py's build_generator/build_discriminator and compile calls, Keras 2 API, dropout 0."""
    cnn = tf_keras.Sequential([
        L.Dense(3 * 3 * 384, input_dim=LATENT, activation="relu"),
        L.Reshape((3, 3, 384)),
        L.Conv2DTranspose(192, 5, strides=1, padding="valid", activation="relu", kernel_initializer="glorot_normal"),
        L.BatchNormalization(),
        L.Conv2DTranspose(96, 5, strides=2, padding="same", activation="relu", kernel_initializer="glorot_normal"),
        L.BatchNormalization(),
        L.Conv2DTranspose(1, 5, strides=2, padding="same", activation="tanh", kernel_initializer="glorot_normal"),
    ])
    latent, image_class = L.Input(shape=(LATENT,)), L.Input(shape=(1,), dtype="int32")
    cls = L.Flatten()(L.Embedding(10, LATENT, embeddings_initializer="glorot_normal")(image_class))
    generator = tf_keras.Model([latent, image_class], cnn(L.multiply([latent, cls])))

    dcnn = tf_keras.Sequential([L.InputLayer(input_shape=(28, 28, 1))])
    for filters, strides in [(32, 2), (64, 1), (128, 2), (256, 1)]:
        dcnn.add(L.Conv2D(filters, 3, padding="same", strides=strides))
        dcnn.add(L.LeakyReLU(0.2))
        dcnn.add(L.Dropout(0.0))
    dcnn.add(L.Flatten())
    image = L.Input(shape=(28, 28, 1))
    features = dcnn(image)
    discriminator = tf_keras.Model(image, [L.Dense(1, activation="sigmoid", name="generation")(features),
                                           L.Dense(10, activation="softmax", name="auxiliary")(features)])
    losses = ["binary_crossentropy", "sparse_categorical_crossentropy"]
    discriminator.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5), loss=losses)
    latent, image_class = L.Input(shape=(LATENT,)), L.Input(shape=(1,), dtype="int32")
    discriminator.trainable = False
    combined = tf_keras.Model([latent, image_class], discriminator(generator([latent, image_class])))
    combined.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5), loss=losses)
    return generator, discriminator, combined


def test_fused_step_equals_the_reference_program_step_for_step():
    ours = gan.ACGAN(latent_size=LATENT, seed=3)
    for layer in ours.discriminator.layers:
        if layer.name.startswith("dropout"):
            layer.rate = 0.0
    generator, discriminator, combined = reference_models()
    generator.set_weights([v.numpy() for v in ours.generator.weights])
    discriminator.set_weights([v.numpy() for v in ours.discriminator.weights if "seed_generator" not in v.path])

    a = make_arrays(n_train=4 * BATCH, n_test=2, seed=5)
    x_all, y_all = scale(a["x_train"]), a["y_train"].astype(np.int32)
    rng = np.random.default_rng(0)
    for step in range(4):
        x, y = x_all[step * BATCH : (step + 1) * BATCH], y_all[step * BATCH : (step + 1) * BATCH]
        z, c = rng.uniform(-1, 1, (BATCH, LATENT)).astype(np.float32), rng.integers(0, 10, BATCH).astype(np.int32)
        z2, c2 = rng.uniform(-1, 1, (2 * BATCH, LATENT)).astype(np.float32), rng.integers(0, 10, 2 * BATCH).astype(np.int32)

        # the reference's loop body, verbatim in substance
        fakes = generator.predict([z, c.reshape(-1, 1)], verbose=0)
        weights = [np.ones(2 * BATCH), np.concatenate([np.full(BATCH, 2.0), np.zeros(BATCH)])]
        ref_d = discriminator.train_on_batch(np.concatenate([x, fakes]), [np.r_[np.full(BATCH, 0.95), np.zeros(BATCH)], np.r_[y, c]],
                                             sample_weight=weights)
        ref_g = combined.train_on_batch([z2, c2.reshape(-1, 1)], [np.full(2 * BATCH, 0.95), c2])

        our_d, _ = ours._discriminator_update(tf.constant(x), tf.constant(y), tf.constant(z), tf.constant(c))
        our_g, _ = ours._generator_update(tf.constant(z2), tf.constant(c2))
        np.testing.assert_allclose(our_d.numpy(), ref_d, rtol=2e-4, err_msg=f"discriminator, step {step}")
        np.testing.assert_allclose(our_g.numpy(), ref_g, rtol=2e-4, err_msg=f"generator, step {step}")

