"""Time acgan's fused training step against the reference-style Keras 3 loop.

    python bench/step_speed.py [--steps 10] [--rounds 3] [--precisions float32,bfloat16]

Everything runs in one process on the same synthetic batch, in alternating rounds,
so that the printed ratios compare like with like on a noisy machine. The
reference-style loop is the straight Keras 3 port of mnist_acgan.py: generator.predict,
discriminator.train_on_batch with the reference's sample weights, then
combined.train_on_batch, with the trainable flag set before each call's first
trace so that both networks really train (checked at the end).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from acgan_cli.backend import import_tensorflow

import_tensorflow()

import keras  # noqa: E402

from acgan_cli import gan  # noqa: E402
from acgan_cli.models import build_discriminator, build_generator  # noqa: E402

BATCH, LATENT = 100, 100


class ReferenceLoop:
    def __init__(self) -> None:
        adam = lambda: keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)  # noqa: E731
        losses = ["binary_crossentropy", "sparse_categorical_crossentropy"]
        self.discriminator = build_discriminator()
        self.discriminator.compile(optimizer=adam(), loss=losses)
        self.generator = build_generator(LATENT)
        latent = keras.Input((LATENT,))
        image_class = keras.Input((1,), dtype="int32")
        fake, aux = self.discriminator(self.generator([latent, image_class]))
        self.combined = keras.Model([latent, image_class], [fake, aux])
        self.combined.compile(optimizer=adam(), loss=losses)
        self.rng = np.random.default_rng(0)

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        n = len(x)
        noise = self.rng.uniform(-1, 1, (n, LATENT))
        sampled = self.rng.integers(0, 10, n)
        fakes = self.generator.predict([noise, sampled.reshape(-1, 1)], verbose=0)
        weights = [np.ones(2 * n), np.concatenate([np.full(n, 2.0), np.zeros(n)])]
        # Keras 3 fixes a model's trainable variables when its train function is first traced.
        self.discriminator.trainable = True
        self.discriminator.train_on_batch(
            np.concatenate([x, fakes]), [np.r_[np.full(n, 0.95), np.zeros(n)], np.r_[y, sampled]], sample_weight=weights
        )
        self.discriminator.trainable = False
        noise = self.rng.uniform(-1, 1, (2 * n, LATENT))
        sampled = self.rng.integers(0, 10, 2 * n)
        self.combined.train_on_batch([noise, sampled.reshape(-1, 1)], [np.full(2 * n, 0.95), sampled])


def time_steps(step, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and contender")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--precisions", default="float32,bfloat16", help="acgan precisions to time")
    parser.add_argument("--deterministic", action="store_true", help="enable TF op determinism first, as training does on a CPU")
    args = parser.parse_args()
    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (BATCH, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int32)

    reference = ReferenceLoop()
    d0 = [w.numpy().copy() for w in reference.discriminator.trainable_weights]
    g0 = [w.numpy().copy() for w in reference.generator.trainable_weights]
    contenders = {"reference loop (Keras 3 port)": lambda a, b: reference.step(a, b)}
    for precision in args.precisions.split(","):
        model = gan.ACGAN(latent_size=LATENT, seed=0, precision=precision, jit=False)
        contenders[f"acgan step, {precision}"] = model.train_step

    for step in contenders.values():  # warm-up: tracing and oneDNN kernel selection
        time_steps(step, x, y, 3)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, step in contenders.items():
            times[name].append(time_steps(step, x, y, args.steps))

    moved_d = all(np.any(a != b.numpy()) for a, b in zip(d0, reference.discriminator.trainable_weights))
    moved_g = all(np.any(a != b.numpy()) for a, b in zip(g0, reference.generator.trainable_weights))
    base = statistics.median(times["reference loop (Keras 3 port)"])
    mode = "deterministic ops" if args.deterministic else "default ops"
    print(f"batch {BATCH} real + {BATCH} fake, {args.rounds} rounds x {args.steps} steps, {mode}, median s/step")
    print(f"{'contender':<32} {'s/step':>8} {'speed-up':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<32} {med:8.3f} {base / med:8.2f}x")
    print(f"reference loop trained both networks: discriminator {moved_d}, generator {moved_g}")


if __name__ == "__main__":
    main()
