"""The training step's numerics: targets, weights, reductions and which weights move."""

from __future__ import annotations

import numpy as np
import pytest

gan = pytest.importorskip("acgan_cli.gan")
import tensorflow as tf  # noqa: E402

from acgan_cli.data import scale  # noqa: E402
from tests.conftest import make_arrays  # noqa: E402

EPS = 1e-7  # Keras' clipping epsilon for probabilities


@pytest.fixture()
def model():
    return gan.ACGAN(latent_size=8, seed=11)


@pytest.fixture(scope="module")
def batch():
    a = make_arrays(n_train=12, n_test=2, seed=3)
    return scale(a["x_train"]), a["y_train"].astype(np.int32)


def snapshot(variables):
    return {v.path: np.array(v.numpy()) for v in variables}


def moved(before, variables):
    return {v.path: bool(np.any(before[v.path] != v.numpy())) for v in variables}


def noise(n, latent=8, seed=0):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.uniform(-1, 1, (n, latent)), tf.float32),
            tf.constant(rng.integers(0, 10, n), tf.int32))


def numpy_bce(target, p):
    p = np.clip(p.reshape(-1), EPS, 1 - EPS)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def numpy_weighted_scce(classes, p, weight):
    p = np.clip(p, EPS, 1 - EPS)
    per_sample = -np.log(p[np.arange(len(classes)), classes])
    return float(np.sum(weight * per_sample) / len(classes))  # Keras: sum over batch size


def test_discriminator_update_targets_weights_and_losses_match_numpy(model, batch):
    x, y = batch
    z, c = noise(len(x))
    losses, seen = model._discriminator_update(tf.constant(x), tf.constant(y), z, c)
    seen = {k: v.numpy() for k, v in seen.items()}
    n = len(x)
    # One-sided soft labels and class weights exactly as the reference.
    np.testing.assert_array_equal(seen["real_fake"], np.r_[np.full(n, 0.95, np.float32), np.zeros(n, np.float32)])
    np.testing.assert_array_equal(seen["class_weight"], np.r_[np.full(n, 2.0), np.zeros(n)])
    np.testing.assert_array_equal(seen["classes"], np.r_[y, c.numpy()])
    np.testing.assert_array_equal(seen["images"][:n], x)
    assert seen["images"].shape == (2 * n, 28, 28, 1)
    gen = numpy_bce(seen["real_fake"], seen["p_real"])
    aux = numpy_weighted_scce(seen["classes"], seen["p_class"], seen["class_weight"])
    np.testing.assert_allclose(losses.numpy(), [gen + aux, gen, aux], rtol=1e-5)
    # With weights 2/0 the class loss is the plain mean over the real half.
    real_only = -np.log(np.clip(seen["p_class"][np.arange(n), y], EPS, 1))
    np.testing.assert_allclose(aux, real_only.mean(), rtol=1e-5)


def test_generator_update_targets_and_losses_match_numpy(model):
    z, c = noise(16, seed=1)
    losses, seen = model._generator_update(z, c)
    seen = {k: v.numpy() for k, v in seen.items()}
    np.testing.assert_array_equal(seen["real_fake"], np.full(16, 0.95, np.float32))
    np.testing.assert_array_equal(seen["class_weight"], np.ones(16))
    np.testing.assert_array_equal(seen["classes"], c.numpy())
    gen = numpy_bce(seen["real_fake"], seen["p_real"])
    aux = numpy_weighted_scce(seen["classes"], seen["p_class"], seen["class_weight"])
    np.testing.assert_allclose(losses.numpy(), [gen + aux, gen, aux], rtol=1e-5)


def test_class_head_gets_no_gradient_from_fakes(model, batch):
    x, y = batch
    n = len(x)
    z, c = noise(n)
    fakes = model.generator([z, c], training=False)
    images = tf.Variable(tf.concat([tf.constant(x), fakes], axis=0))
    with tf.GradientTape() as tape:
        _, aux, _ = model._heads_loss(
            images, tf.concat([tf.fill((n,), 0.95), tf.zeros((n,))], 0), tf.concat([y, c], 0),
            tf.concat([tf.fill((n,), 2.0), tf.zeros((n,))], 0), training=True,
        )
    grad = tape.gradient(aux, images).numpy()
    assert np.all(grad[n:] == 0), "fake images must not feed the class loss"
    assert np.all(np.abs(grad[:n]).reshape(n, -1).max(axis=1) > 0), "every real image feeds the class loss"


def test_discriminator_update_moves_every_discriminator_weight_and_no_generator_state(model, batch):
    x, y = batch
    d_before, g_before = snapshot(model.discriminator.variables), snapshot(model.generator.variables)
    model._discriminator_update(tf.constant(x), tf.constant(y), *noise(len(x)))
    assert all(moved(d_before, model.discriminator.trainable_variables).values())
    # Fakes come from the generator in inference mode: not even BatchNorm statistics move.
    assert not any(moved(g_before, model.generator.variables).values())


def test_generator_update_moves_every_generator_weight_and_no_discriminator_weight(model):
    d_before, g_before = snapshot(model.discriminator.trainable_variables), snapshot(model.generator.variables)
    model._generator_update(*noise(16))
    g_moved = moved(g_before, model.generator.variables)
    assert all(g_moved.values()), [k for k, v in g_moved.items() if not v]  # BN moving stats included
    assert not any(moved(d_before, model.discriminator.trainable_variables).values())


def test_compiled_step_trains_both_networks_and_is_reproducible(batch):
    """The Keras 3 trap: a port that freezes the discriminator before compiling trains nothing in it."""
    x, y = batch
    runs = []
    for _ in range(2):
        tf.keras.utils.set_random_seed(5)
        m = gan.ACGAN(latent_size=8, seed=5)
        d0, g0 = snapshot(m.discriminator.trainable_variables), snapshot(m.generator.trainable_variables)
        losses = m.train_step(x, y)
        assert all(moved(d0, m.discriminator.trainable_variables).values())
        assert all(moved(g0, m.generator.trainable_variables).values())
        assert losses.discriminator.shape == (3,) and losses.generator.shape == (3,)
        np.testing.assert_allclose(losses.discriminator[0], losses.discriminator[1] + losses.discriminator[2], rtol=1e-6)
        np.testing.assert_allclose(losses.generator[0], losses.generator[1] + losses.generator[2], rtol=1e-6)
        # At initialisation the class head is near-uniform: about log(10) each.
        assert abs(losses.discriminator[2] - np.log(10)) < 0.5
        runs.append((losses, snapshot(m.generator.trainable_variables)))
    np.testing.assert_array_equal(runs[0][0].discriminator, runs[1][0].discriminator)
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


def test_step_draws_fresh_noise_each_call(model, batch):
    x, y = batch
    first, second = model.train_step(x, y), model.train_step(x, y)
    assert not np.array_equal(first.generator, second.generator)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_step_runs_and_keeps_float32_heads(precision, batch):
    x, y = batch
    m = gan.ACGAN(latent_size=8, seed=1, precision=precision)
    losses = m.train_step(x, y)
    assert np.all(np.isfinite(losses.discriminator)) and np.all(np.isfinite(losses.generator))
    compute = {l.name: l.dtype_policy.compute_dtype for l in m.discriminator.layers}
    assert compute["generation"] == compute["auxiliary"] == "float32"
    assert compute["conv_1"] == precision
    assert all(v.dtype == "float32" for v in m.generator.trainable_variables)


def test_test_losses_follow_reference_targets(model):
    a = make_arrays(n_train=2, n_test=20, seed=4)
    x_test, y_test = scale(a["x_test"]), a["y_test"]
    out = model.test_losses(x_test, y_test, np.random.default_rng(0))
    assert set(out) == {"generator", "discriminator"}
    for v in out.values():
        assert v.shape == (3,) and np.isclose(v[0], v[1] + v[2])
    # Recompute the discriminator's test loss by hand on the same fresh fakes.
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (20, 8)).astype(np.float32)
    c = rng.integers(0, 10, 20).astype(np.int32)
    fakes = model.generate(z, c)
    p_real, p_class = (t.numpy() for t in model.discriminator(np.concatenate([x_test, fakes]), training=False))
    target = np.r_[np.ones(20), np.zeros(20)]
    gen = numpy_bce(target, p_real)
    aux = numpy_weighted_scce(np.r_[y_test, c], p_class, np.ones(40))
    np.testing.assert_allclose(out["discriminator"], [gen + aux, gen, aux], rtol=1e-4)


def test_auto_choices_never_pick_the_slow_cpu_path():
    assert gan.resolve_jit("auto", "CPU") is False
    assert gan.resolve_jit("auto", "GPU") is True
    assert gan.resolve_jit("on", "CPU") is True and gan.resolve_jit("off", "GPU") is False
    assert gan.resolve_precision("auto", "CPU") == "float32"
    assert gan.resolve_precision("auto", "GPU") == "float16"
    assert gan.resolve_precision("bfloat16", "GPU") == "bfloat16"


def test_random_streams_are_independent():
    """Equal Keras seeds draw equal numbers: dropout must not drop where the noise is small."""
    from acgan_cli.config import derive_seed

    m = gan.ACGAN(latent_size=8, seed=5)
    drops = [l for l in m.discriminator.layers if l.name.startswith("dropout")]
    seeds = {int(m.noise_seed.state.numpy()[0])} | {int(l.seed_generator.state.numpy()[0]) for l in drops}
    assert len(seeds) == 5, "noise and each dropout layer need seeds of their own"
    assert derive_seed(5, "noise") == derive_seed(5, "noise") != derive_seed(6, "noise")
    noise = m._sample(tf.constant(1000))[0].numpy().ravel()
    mask = drops[0](tf.ones((noise.size,)), training=True).numpy()
    agreement = np.mean((mask == 0) == (noise < -0.4))  # P(u < 0.3) for u uniform in [-1, 1]
    assert 0.45 < agreement < 0.75, agreement  # independent: about 0.58, not 1
