"""What the host loop (`run.loop`), recovery (`run.recovery`) and the jobs
(`train`, `finetune.train`) ask of an engine, and what a host loop of steps
returns. `TFEngine` and `JaxEngine` both provide `Predicts`: an `Engine`
that also predicts, which fine-tuning needs to score its dev sets.
"""

from typing import NamedTuple, Protocol, runtime_checkable

import keras
import numpy as np

from trainers.bert.run.checkpoint import Checkpoint


class StepResult(NamedTuple):
    """What `Engine.train(n)` returns for its `n` steps."""

    sums: np.ndarray  # the task's metric sums over the applied steps (`tasks`)
    grad_norm: float  # the last step's global gradient norm, before clipping
    skipped: int  # non-finite steps skipped (not applied)
    trailing_non_finite: int  # how many of the last steps were non-finite in a row
    noise: np.ndarray  # sums of |G_b|^2 and |G_B|^2 over the applied steps (`noise_scale`)


@runtime_checkable
class Engine(Protocol):
    """A run's state and steps on some devices.

    Built by `engines.make` from the run's settings; `start_phase` readies a
    phase before its first `train`.
    """

    model: keras.Model  # the task's model, holding the current weights
    optimizer: keras.optimizers.Optimizer  # the optimizer, built on the model
    is_chief: bool  # this process writes logs, run.json and exports
    platform: str  # "cpu", "gpu" or "tpu"
    description: str  # the devices, for the run's first progress line
    xla_off: bool  # the steps run without XLA though jit_compile asked for it
    noise_pieces: int  # gradients per update the noise scale measures (1: none)

    @property
    def step(self) -> int:
        """The global step: optimizer updates applied so far."""

    def checkpoint_bytes(self) -> int:
        """The size of one checkpoint, for the disk check before any write."""

    def measure_peak_flops(self, dtype: str) -> float:
        """The devices' measured matmul FLOP/s in `dtype`, for MFU."""

    def start_phase(self, plan, files, seed, remasker=None, resume=None) -> None:
        """Readies the phase of `plan` (`run.phases.Plan`) on `files`
        (`data.input.inputs.PhaseFiles`), restoring `resume` (a
        `Checkpoint`) when the job restarts."""

    def train(self, n: int) -> StepResult:
        """`n` steps in one host call."""

    def evaluate(self, plan, files, n: int) -> np.ndarray:
        """The task's metric sums over `n` held-out batches from their start."""

    def trust_ratios(self) -> np.ndarray | None:
        """The last step's trust ratios of the adapted variables, or None."""

    def assign_weights(self, values: dict) -> None:
        """Model variables from {variable path: array} (a warm start)."""

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint in model_dir."""

    def save(self) -> str | None:
        """Saves the state and the input's position; returns the path (None
        on a process other than the chief)."""

    def remove_partial_saves(self) -> list:
        """Removes what failed saves left behind; returns its paths."""

    def restore(self, checkpoint: Checkpoint) -> None:
        """Weights, optimizer state and step of `checkpoint`; the input goes
        on from where it is (a roll-back steps over the bad batches)."""

    def state_is_finite(self) -> bool:
        """Every weight and optimizer variable is finite (before a save)."""


@runtime_checkable
class Predicts(Engine, Protocol):
    """An engine that can run the model over a whole file: fine-tuning's
    dev and test predictions."""

    def predict(self, plan, files) -> dict:
        """{output name: array} of every record of `files`, in file order
        (the last batch padded, the padding dropped)."""
