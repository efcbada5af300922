"""Training phases as data: the paper's mixed-batch schedule is a list of
two phases (sequence length 128 at global batch 65536, then 512 at 32768),
each warming the learning rate up again from zero.

A phase is gin-configurable under its own scope, e.g.

    phase1/Phase.seq_length = 128
    phase1/Phase.global_batch_size = 65536
    ...
    train.phases = [@phase1/Phase(), @phase2/Phase()]
"""

import dataclasses

import gin

from lamb_tf import schedules
from trainers.bert import settings
from trainers.bert.errors import ConfigError

INTEGERS = (
    "seq_length",
    "global_batch_size",
    "steps",
    "warmup_steps",
    "max_predictions",
    "micro_batch_size",
)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Phase:
    """One stage of pretraining.

    Args:
        seq_length: tokens per sequence (the records' max_seq_length).
        global_batch_size: sequences per optimizer update, over all replicas.
        steps: optimizer updates in this phase.
        peak_learning_rate: the rate reached at the end of the warmup.
        warmup_steps: linear warmup from 0 at the start of the phase.
        power: of the polynomial decay to `end_learning_rate` (0.5 in the
            public LAMB recipe, 1.0 linear).
        end_learning_rate: the rate at the end of the phase.
        max_predictions: masked-LM targets per sequence in the records.
        train_files: comma-separated globs of TFRecord shards, or
            "builtin:pydoc" for data made from the built-in corpus.
        eval_files: held-out shards for evaluation (None: no evaluation;
            with "builtin:pydoc" training data, held-out topics are used).
        micro_batch_size: sequences per replica per forward pass; when the
            global batch is larger than replicas x micro batch, gradients of
            several micro-batches are accumulated into one update.
            None: the whole per-replica batch in one pass.
        reset_optimizer: start this phase with fresh optimizer moments (and
            bias correction from t=1) instead of carrying them over.
    """

    seq_length: int
    global_batch_size: int
    steps: int
    peak_learning_rate: float
    warmup_steps: int = 0
    power: float = 1.0
    end_learning_rate: float = 0.0
    max_predictions: int = 20
    train_files: str = "builtin:pydoc"
    eval_files: str | None = None
    micro_batch_size: int | None = None
    reset_optimizer: bool = False

    def __post_init__(self):
        # gin reads `steps = 1e3` as a float: a whole number is stored as the
        # integer it is (run.json, the plans); others are refused by `check`.
        for name in INTEGERS:
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))

    def schedule(self):
        return schedules.WarmupPolynomialDecay(
            peak_learning_rate=self.peak_learning_rate,
            total_steps=self.steps,
            warmup_steps=self.warmup_steps,
            power=self.power,
            end_learning_rate=self.end_learning_rate,
        )


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a phase's global batch maps onto the replicas."""

    phase: Phase
    index: int
    first_step: int  # global optimizer step at which the phase starts
    per_replica_batch: int
    micro_batch: int
    accumulation_steps: int

    @property
    def last_step(self):
        return self.first_step + self.phase.steps


def check(phases):
    """Checks every phase's own settings (before data or a model exist)."""
    if not phases:
        raise ConfigError("train.phases is empty: give at least one Phase")
    for index, phase in enumerate(phases):
        if not isinstance(phase, Phase):
            raise ConfigError(f"train.phases[{index}] is not a Phase: {phase!r}")
        _check_phase(phase, _where(index))


def plan(phases, num_replicas, max_sequence_length):
    """Checks every phase against the replicas and the model before any
    compute; returns one `Plan` per phase."""
    check(phases)
    plans = []
    first_step = 0
    for index, phase in enumerate(phases):
        where = _where(index)
        if phase.seq_length > max_sequence_length:
            raise ConfigError(
                f"{where}: seq_length={phase.seq_length} exceeds the model's "
                f"max_sequence_length={max_sequence_length}"
            )
        if phase.global_batch_size % num_replicas:
            raise ConfigError(
                f"{where}: global_batch_size={phase.global_batch_size} is not divisible by "
                f"the {num_replicas} replicas"
            )
        per_replica = phase.global_batch_size // num_replicas
        micro = phase.micro_batch_size or per_replica
        if per_replica % micro:
            raise ConfigError(
                f"{where}: the per-replica batch {per_replica} (global_batch_size="
                f"{phase.global_batch_size} / {num_replicas} replicas) is not divisible by "
                f"micro_batch_size={micro}"
            )
        plans.append(Plan(phase, index, first_step, per_replica, micro, per_replica // micro))
        first_step += phase.steps
    return plans


def _where(index):
    return f"phase {index + 1} (Phase #{index})"


def _check_phase(phase, where):
    for name in ("seq_length", "global_batch_size", "steps", "max_predictions"):
        settings.integer(f"{where}: {name}", getattr(phase, name))
    settings.integer(f"{where}: micro_batch_size", phase.micro_batch_size, optional=True)
    settings.integer(f"{where}: warmup_steps", phase.warmup_steps, minimum=0)
    settings.boolean(f"{where}: reset_optimizer", phase.reset_optimizer)
    for name in ("train_files", "eval_files"):
        value = getattr(phase, name)
        if not (isinstance(value, str) or (value is None and name == "eval_files")):
            raise ConfigError(f"{where}: {name} must be a string of file patterns, got {value!r}")
    if phase.warmup_steps > phase.steps:
        raise ConfigError(
            f"{where}: warmup_steps={phase.warmup_steps} must be in [0, steps={phase.steps}]"
        )
    if phase.max_predictions > phase.seq_length:
        raise ConfigError(
            f"{where}: max_predictions={phase.max_predictions} exceeds "
            f"seq_length={phase.seq_length}"
        )
    try:
        phase.schedule()
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def schedule(plans):
    """The learning rate over global steps: each phase warms up again."""
    return schedules.MultiPhaseSchedule([p.phase.schedule() for p in plans])
