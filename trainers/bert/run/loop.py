"""The host loop of one phase, the same for every engine.

Each turn runs a host loop of several steps on the device, then:

    train -> recover? -> save -> preempted? -> evaluate (-> target reached?)

The engine (`engines.contract.Engine`) does the steps,
the input, checkpoints and finiteness checks; the task (`tasks`) says what
the figures are; `recovery.Recovery` says whether a loop's result is bad;
`progress.Progress` reports.
"""

import dataclasses
import time

from trainers.bert import settings
from trainers.bert.errors import DataError, resumes_from
from trainers.bert.model import tasks
from trainers.bert.run.noise_scale import GradientNoiseScale


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """How often the loop does what (`train`'s arguments of the same names)."""

    steps_per_loop: int = 10
    checkpoint_every: int | None = 100
    eval_every: int | None = None
    eval_steps: int = 10
    target_mlm_accuracy: float | None = None

    def __post_init__(self):
        for name, optional in (
            ("steps_per_loop", False),
            ("checkpoint_every", True),
            ("eval_every", True),
            ("eval_steps", False),
        ):
            value = settings.integer(f"train.{name}", getattr(self, name), optional=optional)
            object.__setattr__(self, name, value)
        settings.number(
            "train.target_mlm_accuracy", self.target_mlm_accuracy, 0.0, 1.0, optional=True
        )


class Loop:
    """Runs phases on `engine`.

    Args:
        engine: the engine of the run (see the module docstring).
        settings: `LoopSettings`.
        recovery: `recovery.Recovery`.
        progress: `progress.Progress`.
        schedule: the learning rate over global steps (reported).
        config: the `model.BertConfig` (for model FLOPs).
        plans: every phase's plan (the run's ETA counts the later ones).
        peak_flops: the machine's peak FLOP/s for MFU, or None.
        preemption: a `preemption.PreemptionWatcher`.
        saved_step: the step of the newest checkpoint (None: none yet).
        task: what is trained (`tasks`: its figures and FLOPs).
    """

    def __init__(
        self,
        engine,
        settings,
        recovery,
        progress,
        *,
        schedule,
        config,
        plans,
        peak_flops,
        preemption,
        saved_step,
        task=tasks.PRETRAINING,
    ):
        self.engine, self.settings, self.recovery = engine, settings, recovery
        self.progress, self.schedule, self.config = progress, schedule, config
        self.plans, self.task = plans, task
        self.peak_flops, self.preemption, self.saved_step = peak_flops, preemption, saved_step

    def run_phase(self, plan, files):
        """Runs `plan`'s phase from the current step to its end (or to the
        target accuracy, or a preemption); returns the last figures."""
        settings = self.settings
        current = self.engine.step
        self.progress.start_phase(plan, current, self._later_steps(plan))
        self.recovery.start_phase()
        self.noise_scale = GradientNoiseScale(
            plan.phase.global_batch_size, self.engine.noise_pieces
        )
        result = {"stopped_early": False, "preempted": False}
        while current < plan.last_step:
            n = self._loop_length(plan, current)
            # Train.
            result["train"], skipped, trailing = self._train(plan, n)
            current = self.engine.step
            at_end = current >= plan.last_step
            # Skipped steps leave the step where it was: no second
            # checkpoint of the same step.
            saving = current != self.saved_step and (
                at_end or _due(current, settings.checkpoint_every) or self.preemption.requested
            )
            # Recover?
            cause = self.recovery.check(
                n,
                result["train"]["loss"],
                skipped,
                trailing,
                self.engine.state_is_finite if saving else None,
            )
            if cause:
                where = f"phase {plan.index + 1}, step {current}"
                restored = self.recovery.roll_back(self.engine, where, cause, self.progress.message)
                self.saved_step = restored.step
                current = self.engine.step
                continue
            # Save.
            if saving:
                self._save()
            # Preempted?
            if self.preemption.requested:
                self.progress.message(
                    f"{self.preemption.name}: stopped at phase {plan.index + 1}, step {current}, "
                    f"checkpointed; exiting with status {self.preemption.exit_status}, a restart "
                    "resumes here"
                )
                result["preempted"] = True
                break
            # Evaluate.
            if files.eval and (at_end or _due(current, settings.eval_every)):
                result["eval"] = self.evaluate(plan, files)
                if self._target_reached(result["eval"], current):
                    if not at_end:
                        self._save()
                    result["stopped_early"] = True
                    break
        return result

    def _later_steps(self, plan):
        """The phases after `plan`'s in steps of it, by model FLOPs: the
        run's ETA assumes they run at this phase's FLOP rate."""

        def step_flops(p):
            return self.task.flops_per_sequence(self.config, p.phase) * p.phase.global_batch_size

        later = sum(p.phase.steps * step_flops(p) for p in self.plans[plan.index + 1 :])
        return later / step_flops(plan)

    def evaluate(self, plan, files):
        sums = self.engine.evaluate(plan, files, self.settings.eval_steps)
        figures = self.task.figures(sums)
        self.progress.evaluate(plan, self.engine.step, figures)
        return figures

    def _loop_length(self, plan, current):
        settings = self.settings
        return min(
            settings.steps_per_loop,
            plan.last_step - current,
            _to_next(current, settings.checkpoint_every),
            _to_next(current, settings.eval_every),
        )

    def _train(self, plan, n):
        """Runs `n` steps; returns (figures, skipped, trailing non-finite)."""
        phase = plan.phase
        start = time.perf_counter()
        try:
            result = self.engine.train(n)
        except DataError as error:
            kept = self.engine.latest()
            raise DataError(
                f"phase {plan.index + 1}, after step {self.engine.step}: {error}. Training "
                f"stopped; a restart resumes from {resumes_from(kept)} once the file is "
                "replaced or left out of train_files"
            ) from None
        figures = self.task.figures(result.sums)
        seconds = time.perf_counter() - start
        current = self.engine.step
        sequences_per_second = n * phase.global_batch_size / seconds
        sequence_flops = self.task.flops_per_sequence(self.config, phase)
        figures.update(
            learning_rate=float(self.schedule(current - 1)),
            gradient_norm=result.grad_norm,
            sequences_per_second=sequences_per_second,
            tokens_per_second=sequences_per_second * phase.seq_length,
            mfu=sequence_flops * sequences_per_second / self.peak_flops
            if self.peak_flops
            else None,
            skipped=result.skipped,
        )
        figures.update(self.noise_scale.update(*result.noise, steps=n - result.skipped))
        self.progress.train(plan, current, figures, self.engine.trust_ratios())
        return figures, result.skipped, result.trailing_non_finite

    def _save(self):
        self.progress.message(f"checkpoint {self.engine.save()}")
        self.saved_step = self.engine.step
        self.recovery.saved()

    def _target_reached(self, figures, current):
        target = self.settings.target_mlm_accuracy
        accuracy = figures["mlm_accuracy"]
        if target is None or accuracy < target:
            return False
        self.progress.message(
            f"target masked-LM accuracy {target} reached ({accuracy:.4f}) at step {current}: "
            "stopping"
        )
        return True


def _due(current, every):
    return bool(every) and current % every == 0


def _to_next(current, every):
    return every - current % every if every else float("inf")
