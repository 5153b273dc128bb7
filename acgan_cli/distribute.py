"""tf.distribute for acgan: which strategy, who writes files, and the input pipeline.

docs/distributed.md is the user-facing description; keep them in step. The step itself
(per-replica losses over the global batch, per-replica noise) lives in gan.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from acgan_cli.errors import ConfigError, TrainingError
from acgan_cli.runs import RunDir

# Job names of TF_CONFIG that run the training program (MultiWorkerMirroredStrategy has no "ps").
_WORKER_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class Task:
    """This process's place in the cluster: TF_CONFIG's task under multi-worker, else a lone chief."""

    type: str | None = None
    index: int = 0
    workers: int = 1
    has_chief: bool = False

    @property
    def chief(self) -> bool:
        # TensorFlow's rule (multi_worker_util.is_chief): the "chief" task, else worker 0.
        return self.type in (None, "chief") or (self.type == "worker" and self.index == 0 and not self.has_chief)


def task(strategy: str, environ: Mapping[str, str] = os.environ) -> Task:
    """Who this process is; needs no TensorFlow, so it can be known before anything is set up."""
    if strategy != "multi-worker":
        return Task()
    raw = environ.get("TF_CONFIG", "")
    hint = "see docs/distributed.md for an example"
    if not raw.strip():
        raise ConfigError(f"--strategy multi-worker needs the TF_CONFIG environment variable (cluster and task); {hint}")
    try:
        tf_config = json.loads(raw)
        cluster, me = tf_config["cluster"], tf_config["task"]
        kind, index = me["type"], int(me["index"])
        members = {job: list(cluster.get(job) or []) for job in _WORKER_JOBS}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"TF_CONFIG is not valid ({exc!r}); it needs \"cluster\" and \"task\": {{\"type\", \"index\"}}; {hint}") from None
    if kind not in _WORKER_JOBS:
        raise ConfigError(f"TF_CONFIG's task type {kind!r} does not train; acgan's workers are of type chief or worker")
    if not 0 <= index < len(members[kind]):
        raise ConfigError(f"TF_CONFIG's task is {kind} {index}, but its cluster lists {len(members[kind])} {kind} address(es)")
    if len(members["chief"]) > 1:
        raise ConfigError("TF_CONFIG's cluster lists more than one chief; there is at most one")
    return Task(type=kind, index=index, workers=len(members["chief"]) + len(members["worker"]), has_chief=bool(members["chief"]))


_CREATED: dict[str, Any] = {}


def create(name: str) -> Any:
    """The tf.distribute strategy `--strategy NAME` asks for; None for the default strategy.

    The default strategy (one device, no replicas) keeps gan.py's plain step, the fastest
    on one device. Call this before any other TensorFlow operation: MultiWorkerMirroredStrategy
    configures the runtime's collectives and waits here until every worker has started.
    One strategy per name and process: two over the same devices number their collective
    operations alike, and the runtime mixes them up.
    """
    if name not in _CREATED:
        _CREATED[name] = _create(name)
    return _CREATED[name]


def _create(name: str) -> Any:
    import tensorflow as tf

    if name == "default":
        return None
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        # One GPU or none: the plain step; MirroredStrategy pays off from two GPUs on.
        return tf.distribute.MirroredStrategy([d.name for d in gpus]) if len(gpus) > 1 else None
    if name == "mirrored":
        # Without a GPU every local CPU device is a replica: one, unless split into logical devices.
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    raise ConfigError(f"unknown strategy {name!r}")


def describe(strategy: Any, name: str, me: Task) -> dict[str, Any]:
    """What `auto` (or the named strategy) became here, for config.json's `resolved`."""
    if strategy is None:
        return {"strategy": "default", "replicas": 1, "workers": 1}
    kind = "multi-worker" if name == "multi-worker" else "mirrored"
    return {"strategy": kind, "replicas": int(strategy.num_replicas_in_sync), "workers": me.workers}


@contextlib.contextmanager
def peers_watched(me: Task) -> Iterator[None]:
    """A worker that stops (its own error, a kill) aborts the others' collectives: one line each."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.UnavailableError as exc:
        if me.type is None:
            raise
        # "{{function_node ...}} Collective ops is aborted by: Socket closed" -> the words
        reason = re.sub(r"\{\{.*?\}\}", "", exc.message or "").strip().split("\n")[0].strip() or type(exc).__name__
        raise TrainingError(
            f"{me.type} {me.index} lost contact with another worker ({reason}); that worker's own output says why"
        ) from None


@contextlib.contextmanager
def writable(run: RunDir, me: Task) -> Iterator[RunDir]:
    """Where this process writes: the run directory on the chief; elsewhere a temporary one.

    Every worker runs the whole program, so that their collective operations stay in
    lockstep; the others write what the chief writes into a directory that is deleted
    at the end (the pattern of TensorFlow's multi-worker guide).
    """
    if me.chief:
        yield run
        return
    with tempfile.TemporaryDirectory(prefix=f"acgan-{me.type}-{me.index}-") as tmp:
        yield RunDir(tmp)


def agree(strategy: Any, seed: int, must_match: Mapping[str, int]) -> int:
    """The chief's seed, for every worker; ConfigError if the workers differ in `must_match`.

    A new run without --seed draws one per process, and every worker must shuffle and
    draw as the chief does. Differing data would hang the collectives instead of failing.
    Replica 0 lives on the chief. One all-reduce of [seed * (replica == 0), v, v^2]: the R
    values of a count agree exactly when sum(v)^2 = R * sum(v^2) (Cauchy-Schwarz).
    """
    import tensorflow as tf

    names = list(must_match)
    local = tf.constant([seed, *(must_match[k] for k in names), *(must_match[k] ** 2 for k in names)], tf.int64)

    def replica(v):
        ctx = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.int64)
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.concat([v[:1] * first, v[1:]], 0))

    total = strategy.experimental_local_results(tf.function(lambda v: strategy.run(replica, args=(v,)))(local))[0]
    total = [int(t) for t in total.numpy()]
    replicas, k = strategy.num_replicas_in_sync, len(names)
    sums, squares = total[1 : 1 + k], total[1 + k :]
    differ = [n for i, n in enumerate(names) if sums[i] * sums[i] != replicas * squares[i]]
    if differ:
        raise ConfigError(
            f"the workers differ in {', '.join(differ)}: every worker must read the same data and run "
            "(same --data and, on resume, the same run directory)"
        )
    return total[0]


def replica_parts(strategy: Any, array: np.ndarray) -> Any:
    """A global array cut into per-replica parts, as the input pipeline cuts a global batch."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(np.array_split(array, replicas)[ctx.replica_id_in_sync_group])
    )


def scale(images: Any) -> Any:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1): data.scale's arithmetic, bit for bit, in TensorFlow."""
    import tensorflow as tf

    return ((tf.cast(images, tf.float32) - 127.5) / 127.5)[..., tf.newaxis]


class Batches:
    """The training set fed through tf.data and distributed by the strategy.

    Each step's global batch is the one the plain path takes, `order[step*B : (step+1)*B]`;
    replica r of R gets its r-th part as numpy.array_split cuts it (the first B mod R
    replicas one image more). Every worker holds the whole training set and the same
    order (both follow from the run's seed) and builds the parts of its own replicas.
    The images stay uint8 until the pipeline scales them, a quarter of float32's memory.
    """

    def __init__(self, strategy: Any, images: np.ndarray, labels: np.ndarray) -> None:
        import tensorflow as tf

        self.strategy = strategy
        with tf.device("/cpu:0"):
            self.images = tf.constant(images, tf.uint8)
            self.labels = tf.constant(labels, tf.int32)

    def epoch(self, order: np.ndarray, batch_size: int, steps: int) -> Iterator[tuple[Any, Any]]:
        """`steps` (x, y) per-replica batches for `strategy.run`, in step order."""
        import tensorflow as tf

        order_t = tf.constant(order, tf.int64)
        total, replicas, global_batch = len(order), self.strategy.num_replicas_in_sync, batch_size

        def pipeline(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            first = ctx.input_pipeline_id * local

            def element(k):
                # The strategy hands a pipeline's consecutive elements to its local replicas in turn.
                start = (k // local) * global_batch
                replica = first + k % local
                size = tf.minimum(tf.constant(global_batch, tf.int64), total - start)
                part, extra = size // replicas, size % replicas
                lo = start + replica * part + tf.minimum(replica, extra)
                idx = order_t[lo : lo + part + tf.cast(replica < extra, tf.int64)]
                return scale(tf.gather(self.images, idx)), tf.gather(self.labels, idx)

            return tf.data.Dataset.range(steps * local).map(element).prefetch(tf.data.AUTOTUNE)

        return iter(self.strategy.distribute_datasets_from_function(pipeline))
