"""Training settings: the paper's defaults, their validation, and their JSON form."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from acgan_cli.errors import ConfigError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
JIT_MODES = ("auto", "on", "off")
DATASETS = ("mnist", "fashion-mnist")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")


def derive_seed(seed: int, *stream: int | str) -> int:
    """An independent 31-bit seed for one random stream of a run.

    Keras' stateless generators with equal seeds draw equal numbers: a dropout layer
    seeded like the noise generator would drop exactly where the noise is below the
    rate. Every stream therefore gets its own seed, mixed by numpy's SeedSequence.
    """
    words = [seed, *(sum(ord(c) << (8 * i) for i, c in enumerate(s)) if isinstance(s, str) else s for s in stream)]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


@dataclass
class TrainConfig:
    # batch 100 and latent 100 are the ACGAN paper's (Odena et al. 2016, appendix).
    epochs: int = 15
    batch_size: int = 100
    latent_size: int = 100
    num_classes: int = 10
    # Adam 2e-4 / beta_1 0.5 as DCGAN proposed (Radford et al. 2015, arXiv 1511.06434).
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int | None = None
    steps_per_epoch: int | None = None
    dataset: str = "mnist"
    data: str | None = None
    precision: str = "auto"
    jit: str = "auto"
    # tf.distribute: the global batch stays --batch-size whatever the replicas (docs/distributed.md).
    strategy: str = "auto"
    # Quality metrics (docs/metrics.md) every K epochs into history.json; 0: never.
    eval_every: int = 0
    eval_samples: int = 1000

    def validate(self) -> TrainConfig:
        positive = {
            "epochs": self.epochs,
            "batch-size": self.batch_size,
            "latent-size": self.latent_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"--lr must be between 0 and 1, got {self.lr}")
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"--beta1 must be in [0, 1), got {self.beta1}")
        if self.num_classes != 10:
            raise ConfigError("only 10 classes are supported (MNIST-like data)")
        if self.seed is not None and not 0 <= self.seed < 2**31:
            raise ConfigError(f"--seed must be between 0 and {2**31 - 1}, got {self.seed}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.jit not in JIT_MODES:
            raise ConfigError(f"--jit must be one of {', '.join(JIT_MODES)}, got {self.jit!r}")
        if self.eval_every < 0:
            raise ConfigError(f"--eval-every must be 0 (never) or more, got {self.eval_every}")
        if self.eval_samples < 2:
            raise ConfigError(f"--eval-samples must be at least 2, got {self.eval_samples}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.data is None and self.dataset not in DATASETS:
            raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        return self

    def with_seed(self) -> TrainConfig:
        """A copy with a concrete seed, drawn at random when none was given, so every run can be repeated."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=secrets.randbelow(2**31))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        if not isinstance(raw, dict):
            raise ConfigError("the run's config is not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s) in the run's config: {', '.join(unknown)}")
        try:
            return cls(**raw).validate()
        except TypeError as exc:
            raise ConfigError(f"the run's config is malformed: {exc}") from exc
