"""The ACGAN training step: both updates of one step in one compiled function.

The step only computes. Saving weights, pictures and history happens around it
(training.py), so the compiled graph holds no side effects but the weight updates.

Under a tf.distribute strategy each replica runs both updates on its part of the global
batch; its losses are sums over that part divided by the global batch size, so that
the all-reduced (summed) gradients are the gradients of the global batch's loss, as
on one device (docs/distributed.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from acgan_cli.backend import import_tensorflow, native_stderr_hushed

import_tensorflow()

import keras  # noqa: E402 - after the quiet import above
import tensorflow as tf  # noqa: E402

from acgan_cli.distribute import replica_parts  # noqa: E402
from acgan_cli.models import IMAGE_SHAPE, NUM_CLASSES, build_discriminator, build_generator  # noqa: E402
from acgan_cli.config import derive_seed  # noqa: E402

# One-sided label smoothing: real images are labelled 0.95, fakes 0
# (Salimans et al. 2016, "Improved techniques for training GANs", section 3.4).
SOFT_ONE = 0.95
SOFT_ZERO = 0.0
# The class head is trained on real images only (openreview rJXTf9Bxg); weight 2 on
# the real half keeps the class loss' total weight equal to the batch size.
REAL_CLASS_WEIGHT = 2.0
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
EVAL_BATCH = 500


@dataclass(frozen=True)
class StepLosses:
    """[total, generation, auxiliary] for each network, as train_on_batch reports them."""

    discriminator: np.ndarray
    generator: np.ndarray


class ACGAN:
    """Generator, discriminator, their optimizers and the random streams of one run."""

    def __init__(
        self,
        latent_size: int = 100,
        num_classes: int = NUM_CLASSES,
        lr: float = 2e-4,
        beta1: float = 0.5,
        seed: int = 0,
        precision: str = "float32",
        jit: bool = False,
        strategy: Any = None,
    ) -> None:
        """`strategy`: a tf.distribute strategy (see distribute.py), or None for the plain step."""
        self.latent_size = latent_size
        self.num_classes = num_classes
        self.precision = precision
        self.strategy = strategy
        self.distributed = strategy is not None
        policy = POLICIES[precision]
        with self.scope():  # every variable mirrored on the replicas under a strategy
            self.generator = build_generator(latent_size, num_classes, dtype=policy)
            self.discriminator = build_discriminator(num_classes, dtype=policy, seed=seed)
            self.d_optimizer = self._optimizer(lr, beta1, "d_adam")
            self.g_optimizer = self._optimizer(lr, beta1, "g_adam")
            # Built up front: optimizer variables must not be created inside the traced step.
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)
            # Noise and sampled classes of the training step; a variable, so it checkpoints.
            self.noise_seed = keras.random.SeedGenerator(derive_seed(seed, "noise"), name="noise_seed")
        if self.distributed:
            # One replica's BatchNorm would normalise over its part of the batch only; the
            # reference normalises the generator's batch as a whole.
            for layer in self.generator.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True  # moments all-reduced over the replicas
        # Sums, divided by the (global) batch size in _heads_loss. Keras' own "sum over batch
        # size" divides by the replica's part and again by the number of replicas
        # (scale_loss_for_distribution), which is right only when the parts are equal.
        self.bce = keras.losses.BinaryCrossentropy(reduction="sum")
        self.scce = keras.losses.SparseCategoricalCrossentropy(reduction="sum")
        image_spec = tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)
        label_spec = tf.TensorSpec((None,), tf.int32)
        noise_spec = tf.TensorSpec((None, latent_size), tf.float32)
        self._traced: set[str] = set()
        if self.distributed:
            # No XLA under tf.distribute (as Keras' fit decides): training.py refuses --jit on.
            self._step = tf.function(self._distributed_step, reduce_retracing=True)
            self._given = tf.function(self._distributed_given_step, reduce_retracing=True)
        else:
            self._step = tf.function(self._train_step, jit_compile=jit, input_signature=[image_spec, label_spec])
            self._given = tf.function(
                self._given_step, jit_compile=jit, input_signature=[image_spec, label_spec, noise_spec, label_spec, noise_spec, label_spec]
            )
        self._gen = tf.function(self._generate, input_signature=[tf.TensorSpec((None, latent_size), tf.float32), label_spec])
        self._eval_d = tf.function(self._eval_discriminator, input_signature=[image_spec, label_spec, tf.TensorSpec((None,), tf.float32)])
        self._eval_g = tf.function(self._eval_generator, input_signature=[tf.TensorSpec((None, latent_size), tf.float32), label_spec])

    def _optimizer(self, lr: float, beta1: float, name: str) -> keras.optimizers.Optimizer:
        opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, name=name)
        if self.precision == "float16":
            # float16 gradients underflow without dynamic loss scaling; bfloat16 has float32's range.
            opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_scaled")
        return opt

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope (create or assign variables there), or no scope at all."""
        return self.strategy.scope() if self.distributed else contextlib.nullcontext()

    # --- the compiled step ---------------------------------------------------------
    def _sample(self, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        noise = keras.random.uniform((n, self.latent_size), -1.0, 1.0, seed=self.noise_seed)
        labels = keras.random.randint((n,), 0, self.num_classes, seed=self.noise_seed, dtype="int32")
        return noise, labels

    def _replica_sample(self, seed: tf.Tensor, stream: int, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """This replica's own noise and classes: the step's seed with the replica's id folded in.

        Replica ids are global (across workers), so no two replicas draw the same noise.
        """
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        fold = tf.random.experimental.stateless_fold_in
        base = fold(fold(seed, tf.cast(replica, tf.int64)), stream)
        noise = tf.random.stateless_uniform((n, self.latent_size), fold(base, 0), -1.0, 1.0)
        labels = tf.random.stateless_uniform((n,), fold(base, 1), 0, self.num_classes, dtype=tf.int32)
        return noise, labels

    def _heads_loss(self, images, real_fake, classes, class_weight, training, total=None):
        """Both heads' losses, reduced as Keras' compile() does: sum over the batch size.

        `total` is the global batch size under a strategy; this replica's images are a part of it.
        """
        p_real, p_class = self.discriminator(images, training=training)
        total = tf.cast(tf.shape(images)[0], tf.float32) if total is None else total
        gen_loss = self.bce(real_fake[:, None], p_real) / total
        aux_loss = self.scce(classes, p_class, sample_weight=class_weight) / total
        seen = {"images": images, "real_fake": real_fake, "classes": classes, "class_weight": class_weight,
                "p_real": p_real, "p_class": p_class}
        return gen_loss, aux_loss, seen

    def _scaled(self, optimizer, loss):
        """The loss to differentiate: scaled under float16 (inside the tape, or no gradient flows)."""
        return optimizer.scale_loss(loss) if self.precision == "float16" else loss

    @staticmethod
    def _apply(optimizer, tape, loss, variables) -> None:
        optimizer.apply(tape.gradient(loss, variables), variables)

    def _discriminator_update(self, x_real, y_real, noise, sampled, total=None):
        """n real images + n fakes (made in inference mode, like predict()) -> one D update.

        `total`: the global count of images (real and fake) under a strategy.
        """
        n = tf.shape(x_real)[0]
        ones, zeros = tf.ones((n,)), tf.zeros((n,))
        fakes = tf.cast(self.generator([noise, sampled], training=False), tf.float32)
        images = tf.concat([x_real, fakes], axis=0)
        real_fake = tf.concat([ones * SOFT_ONE, zeros + SOFT_ZERO], axis=0)
        classes = tf.concat([y_real, sampled], axis=0)
        class_weight = tf.concat([ones * REAL_CLASS_WEIGHT, zeros], axis=0)
        with tf.GradientTape() as tape:
            gen, aux, seen = self._heads_loss(images, real_fake, classes, class_weight, training=True, total=total)
            loss = gen + aux
            scaled = self._scaled(self.d_optimizer, loss)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        return tf.stack([loss, gen, aux]), seen

    def _generator_update(self, noise, sampled, total=None):
        """Fakes labelled real (0.95) to "trick" the discriminator, which is not updated.

        Its dropout stays active, as in the reference's combined.train_on_batch.
        `total`: the global count of fakes under a strategy.
        """
        m = tf.shape(noise)[0]
        with tf.GradientTape() as tape:
            fakes = tf.cast(self.generator([noise, sampled], training=True), tf.float32)
            gen, aux, seen = self._heads_loss(
                fakes, tf.ones((m,)) * SOFT_ONE, sampled, tf.ones((m,)), training=True, total=total
            )
            loss = gen + aux
            scaled = self._scaled(self.g_optimizer, loss)
        self._apply(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        return tf.stack([loss, gen, aux]), seen

    def _updates(self, x_real, y_real, d_noise, d_sampled, g_noise, g_sampled, d_total=None, g_total=None):
        d_losses, _ = self._discriminator_update(x_real, y_real, d_noise, d_sampled, d_total)
        g_losses, _ = self._generator_update(g_noise, g_sampled, g_total)
        return d_losses, g_losses

    def _given_step(self, x_real, y_real, d_noise, d_sampled, g_noise, g_sampled):
        return self._updates(x_real, y_real, d_noise, d_sampled, g_noise, g_sampled)

    def _train_step(self, x_real: tf.Tensor, y_real: tf.Tensor):
        n = tf.shape(x_real)[0]
        # The generator trains on twice the batch, as many images as the discriminator saw.
        return self._updates(x_real, y_real, *self._sample(n), *self._sample(2 * n))

    def _replica_given_step(self, x_real, y_real, d_noise, d_sampled, g_noise, g_sampled):
        """One replica's part of the step; the losses it returns are its shares of the global ones."""
        ctx = tf.distribute.get_replica_context()
        counts = tf.cast(tf.stack([tf.shape(x_real)[0], tf.shape(g_noise)[0]]), tf.float32)
        real, fakes = tf.unstack(ctx.all_reduce(tf.distribute.ReduceOp.SUM, counts))
        # The discriminator sees every real image and as many fakes.
        return self._updates(x_real, y_real, d_noise, d_sampled, g_noise, g_sampled, 2 * real, fakes)

    def _replica_train_step(self, x_real, y_real, seed):
        n = tf.shape(x_real)[0]
        return self._replica_given_step(
            x_real, y_real, *self._replica_sample(seed, 0, n), *self._replica_sample(seed, 1, 2 * n)
        )

    def _summed(self, per_replica):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _distributed_step(self, x_real, y_real):
        # One draw from the step's seed per step, here in cross-replica context; each
        # replica folds its id into it (_replica_sample).
        seed = self.noise_seed.next()
        d, g = self.strategy.run(self._replica_train_step, args=(x_real, y_real, seed))
        return self._summed(d), self._summed(g)

    def _distributed_given_step(self, *inputs):
        d, g = self.strategy.run(self._replica_given_step, args=inputs)
        return self._summed(d), self._summed(g)

    def _call(self, name: str, fn, *args) -> StepLosses:
        if name in self._traced:
            d, g = fn(*args)
        else:
            with native_stderr_hushed():  # the first call traces and optimises the graph
                d, g = fn(*args)
            self._traced.add(name)
        return StepLosses(discriminator=d.numpy().astype(np.float64), generator=g.numpy().astype(np.float64))

    def train_step(self, x_real: Any, y_real: Any) -> StepLosses:
        """One step: numpy arrays, or under a strategy the per-replica batches of distribute.Batches."""
        if self.distributed:
            return self._call("step", self._step, x_real, y_real)
        x, y = tf.convert_to_tensor(x_real, tf.float32), tf.convert_to_tensor(y_real, tf.int32)
        return self._call("step", self._step, x, y)

    def train_step_with(
        self, x_real: np.ndarray, y_real: np.ndarray, d_noise: np.ndarray, d_sampled: np.ndarray,
        g_noise: np.ndarray, g_sampled: np.ndarray,
    ) -> StepLosses:
        """One step on given inputs instead of drawn ones: the global batch, its n noise vectors
        and classes for the fakes the discriminator sees, and 2n for the generator's update.

        Under a strategy each array is cut into per-replica parts as the input pipeline cuts
        a batch, so the result can be compared with the plain step's.
        """
        arrays = [
            np.asarray(a, dtype) for a, dtype in
            zip((x_real, y_real, d_noise, d_sampled, g_noise, g_sampled), (np.float32, np.int32) * 3)
        ]
        if self.distributed:
            return self._call("given", self._given, *(replica_parts(self.strategy, a) for a in arrays))
        return self._call("given", self._given, *(tf.convert_to_tensor(a) for a in arrays))

    # --- inference -----------------------------------------------------------------
    def _generate(self, noise, labels):
        return tf.cast(self.generator([noise, labels], training=False), tf.float32)

    def generate(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Images in [-1, 1], shape (N, 28, 28, 1), for the given noise and classes."""
        out = [
            self._gen(tf.convert_to_tensor(noise[i : i + EVAL_BATCH], tf.float32), tf.convert_to_tensor(labels[i : i + EVAL_BATCH], tf.int32)).numpy()
            for i in range(0, len(noise), EVAL_BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, *IMAGE_SHAPE), np.float32)

    def _per_sample(self, images, real_fake, classes):
        gen_out, aux_out = self.discriminator(images, training=False)
        gen = keras.losses.binary_crossentropy(real_fake[:, None], gen_out)
        aux = keras.losses.sparse_categorical_crossentropy(classes, aux_out)
        return tf.reduce_sum(gen), tf.reduce_sum(aux)

    def _eval_discriminator(self, images, classes, real_fake):
        return self._per_sample(images, real_fake, classes)

    def _eval_generator(self, noise, labels):
        fakes = tf.cast(self.generator([noise, labels], training=False), tf.float32)
        return self._per_sample(fakes, tf.ones_like(labels, tf.float32), labels)

    def test_losses(self, x_test: np.ndarray, y_test: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The reference's end-of-epoch test losses, [total, generation, auxiliary] each.

        Discriminator: every test image (target 1) plus as many fresh fakes (target 0),
        no sample weights. Generator: twice as many fresh noise vectors through the
        discriminator, target 1. Both in inference mode, averaged over all samples as
        Keras' evaluate() does.
        """
        n = len(x_test)
        noise = rng.uniform(-1, 1, (n, self.latent_size)).astype(np.float32)
        sampled = rng.integers(0, self.num_classes, n).astype(np.int32)
        fakes = self.generate(noise, sampled)
        d_sums = self._sums(
            self._eval_d,
            [np.concatenate([x_test, fakes]), np.concatenate([y_test.astype(np.int32), sampled]),
             np.concatenate([np.ones(n, np.float32), np.zeros(n, np.float32)])],
        )
        noise = rng.uniform(-1, 1, (2 * n, self.latent_size)).astype(np.float32)
        sampled = rng.integers(0, self.num_classes, 2 * n).astype(np.int32)
        g_sums = self._sums(self._eval_g, [noise, sampled])
        return {"discriminator": _triple(d_sums / (2 * n)), "generator": _triple(g_sums / (2 * n))}

    @staticmethod
    def _sums(fn, arrays: list[np.ndarray]) -> np.ndarray:
        total = np.zeros(2, np.float64)
        for i in range(0, len(arrays[0]), EVAL_BATCH):
            parts = fn(*(tf.convert_to_tensor(a[i : i + EVAL_BATCH]) for a in arrays))
            total += [float(p.numpy()) for p in parts]
        return total

    # --- files ---------------------------------------------------------------------
    def save_weights(self, generator_path: str, discriminator_path: str) -> None:
        self.generator.save_weights(generator_path)
        self.discriminator.save_weights(discriminator_path)


def _triple(gen_aux: np.ndarray) -> np.ndarray:
    return np.array([gen_aux[0] + gen_aux[1], gen_aux[0], gen_aux[1]], np.float64)


def device_kind() -> str:
    """'GPU' when TensorFlow sees one, else 'CPU'."""
    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def resolve_precision(requested: str, device: str) -> str:
    """`auto`: mixed float16 on a GPU (tensor cores); float32 on a CPU, see docs/performance.md."""
    if requested != "auto":
        return requested
    return "float16" if device == "GPU" else "float32"


def resolve_jit(requested: str, device: str) -> bool:
    """`auto`: XLA on a GPU; never on a CPU, where it measured 8x slower than graph mode."""
    if requested == "auto":
        return device == "GPU"
    return requested == "on"
