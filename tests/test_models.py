"""The reference architecture, layer for layer (shared/REFERENCE.md, the seed's mnist_acgan.py)."""

from __future__ import annotations

import numpy as np
import pytest

models = pytest.importorskip("acgan_cli.models")
import keras  # noqa: E402
from keras import layers  # noqa: E402


def summary(model):
    return [(type(l).__name__, tuple(l.output.shape[1:])) for l in model.layers if not isinstance(l, keras.layers.InputLayer)]


def test_generator_layers_shapes_and_parameters():
    g = models.build_generator(latent_size=100)
    assert summary(g) == [
        ("Embedding", (1, 100)),
        ("Flatten", (100,)),
        ("Multiply", (100,)),
        ("Dense", (3456,)),
        ("Reshape", (3, 3, 384)),
        ("Conv2DTranspose", (7, 7, 192)),
        ("BatchNormalization", (7, 7, 192)),
        ("Conv2DTranspose", (14, 14, 96)),
        ("BatchNormalization", (14, 14, 96)),
        ("Conv2DTranspose", (28, 28, 1)),
    ]
    by_name = {l.name: l for l in g.layers}
    # parameter counts follow from the reference's layer sizes
    assert by_name["class_embedding"].count_params() == 10 * 100
    assert by_name["project"].count_params() == 100 * 3456 + 3456
    assert by_name["deconv_7"].count_params() == 5 * 5 * 384 * 192 + 192
    assert by_name["deconv_14"].count_params() == 5 * 5 * 192 * 96 + 96
    assert by_name["deconv_28"].count_params() == 5 * 5 * 96 * 1 + 1
    assert g.count_params() == 2_657_897
    convs = [by_name[n] for n in ("deconv_7", "deconv_14", "deconv_28")]
    assert [c.strides for c in convs] == [(1, 1), (2, 2), (2, 2)]
    assert [c.padding for c in convs] == ["valid", "same", "same"]
    assert [c.activation.__name__ for c in convs] == ["relu", "relu", "tanh"]
    assert all(type(c.kernel_initializer).__name__ == "GlorotNormal" for c in convs)
    assert type(by_name["class_embedding"].embeddings_initializer).__name__ == "GlorotNormal"
    assert by_name["project"].activation.__name__ == "relu"


def test_generator_conditions_on_class_by_hadamard_product():
    g = models.build_generator(latent_size=4)
    emb = g.get_layer("class_embedding").embeddings.numpy()
    z = np.array([[1.0, -0.5, 0.25, 0.0]], np.float32)
    hadamard = keras.Model(g.inputs, g.get_layer("hadamard").output)
    out = hadamard([z, np.array([[3]], np.int32)]).numpy()
    np.testing.assert_allclose(out, z * emb[3], rtol=1e-6)
    images = g([np.repeat(z, 2, 0), np.array([[1], [2]], np.int32)], training=False).numpy()
    assert images.shape == (2, 28, 28, 1)
    assert images.min() >= -1 and images.max() <= 1
    assert not np.allclose(images[0], images[1]), "the class must change the image"


def test_discriminator_layers_shapes_and_heads():
    d = models.build_discriminator()
    assert summary(d) == [
        ("Conv2D", (14, 14, 32)), ("LeakyReLU", (14, 14, 32)), ("Dropout", (14, 14, 32)),
        ("Conv2D", (14, 14, 64)), ("LeakyReLU", (14, 14, 64)), ("Dropout", (14, 14, 64)),
        ("Conv2D", (7, 7, 128)), ("LeakyReLU", (7, 7, 128)), ("Dropout", (7, 7, 128)),
        ("Conv2D", (7, 7, 256)), ("LeakyReLU", (7, 7, 256)), ("Dropout", (7, 7, 256)),
        ("Flatten", (12544,)),
        ("Dense", (1,)), ("Dense", (10,)),
    ]
    convs = [l for l in d.layers if isinstance(l, layers.Conv2D)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 4
    assert [c.strides for c in convs] == [(2, 2), (1, 1), (2, 2), (1, 1)]
    assert all(c.padding == "same" for c in convs)
    assert all(l.negative_slope == pytest.approx(0.2) for l in d.layers if isinstance(l, layers.LeakyReLU))
    assert all(l.rate == pytest.approx(0.3) for l in d.layers if isinstance(l, layers.Dropout))
    gen, aux = d.get_layer("generation"), d.get_layer("auxiliary")
    assert gen.activation.__name__ == "sigmoid" and aux.activation.__name__ == "softmax"
    assert d.count_params() == 525_835
    p_real, p_class = d(np.zeros((3, 28, 28, 1), np.float32), training=False)
    assert p_real.shape == (3, 1) and p_class.shape == (3, 10)
    np.testing.assert_allclose(np.sum(p_class.numpy(), axis=1), 1.0, rtol=1e-5)
