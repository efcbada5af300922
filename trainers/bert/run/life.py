"""The life of a run, the same for pretraining (`train`) and fine-tuning
(`finetune.train`):

1. The job's settings are checked when its settings object is made (a
   subclass of `RunSettings`), before any compute.
2. `Life(...)` makes the engine on its devices and checks the disk has room
   for a checkpoint; `life.latest` is the newest checkpoint in model_dir.
3. `life.check(run)`: model_dir holds this run or none (`identity`); only
   then `life.claim(...)` writes run.json, operative_config.gin and
   flags.txt, and opens the progress report.
4. `life.run_phases(...)`: the phases through the host loop (`loop.Loop`)
   under the preemption watcher, the phases done before a restart skipped;
   then the job's ending (export, predictions) unless preempted.
"""

import contextlib
import dataclasses
import os
from typing import ClassVar

import gin
import keras
import tensorflow as tf

from trainers.bert import engines, settings
from trainers.bert.errors import ConfigError
from trainers.bert.formats.export import copy_tree
from trainers.bert.run import identity, run_dir
from trainers.bert.run import phases as phases_lib
from trainers.bert.run.loop import Loop, LoopSettings
from trainers.bert.run.preemption import PreemptionWatcher
from trainers.bert.run.progress import Progress, last_figures

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class RunSettings:
    """The settings every run has; a job's settings add their own. Made
    through gin under the job's name (`NAME`: `train.seed = 1`), each is
    checked when the object is made, and the error names it."""

    NAME: ClassVar[str] = "run"
    BOOLEANS: ClassVar[tuple] = ("jit_compile", "tensorboard")

    optimizer: object = None  # called as optimizer(learning_rate=...)
    clip_norm: float | None = 1.0
    precision: str = "float32"
    jit_compile: bool = True
    steps_per_loop: int = 10
    checkpoint_every: int | None = 100
    keep_checkpoints: int = 3
    max_non_finite_steps: int = 10
    seed: int = 0
    tensorboard: bool = True
    input_pipelines: int | None = None  # None: one per worker (`train.Pretraining`)

    def __post_init__(self):
        name = self.NAME
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{name}.precision={self.precision!r}: choose one of {PRECISIONS}")
        self.clip_norm = settings.number(
            f"{name}.clip_norm", self.clip_norm, above=0.0, optional=True
        )
        for count in ("keep_checkpoints", "steps_per_loop", "max_non_finite_steps"):
            setattr(self, count, settings.integer(f"{name}.{count}", getattr(self, count)))
        self.checkpoint_every = settings.integer(
            f"{name}.checkpoint_every", self.checkpoint_every, optional=True
        )
        self.seed = settings.integer(f"{name}.seed", self.seed, minimum=0)
        self.input_pipelines = settings.integer(
            f"{name}.input_pipelines", self.input_pipelines, optional=True
        )
        run_dir.check_optimizer(f"{name}.optimizer", self.optimizer)
        for flag in self.BOOLEANS:
            settings.boolean(f"{name}.{flag}", getattr(self, flag))
        # What the run's start says besides its headline. Gin has made the
        # phases and the optimizer: its unread bindings are known.
        self.notes = settings.check_gin_bindings_used()

    def loop_settings(self, eval_every=None, eval_steps=1, target_mlm_accuracy=None):
        return LoopSettings(
            self.steps_per_loop, self.checkpoint_every, eval_every, eval_steps, target_mlm_accuracy
        )


class Life:
    """One run in `model_dir`: its engine, files, progress and phases.

    Args:
        model_dir: the run's folder.
        run_settings: the job's `RunSettings`.
        engine_name, where: the engine and what it runs on
            (`engines.placement`).
        plans: the run's phases, planned on `where`.
        config: the `model.bert.BertConfig`.
        engine_options: the engine's other arguments (`task`,
            `noise_scale`).
    """

    def __init__(
        self, model_dir, run_settings, engine_name, where, plans, config, **engine_options
    ):
        self.model_dir, self.plans, self.config = model_dir, plans, config
        self.settings = run_settings
        keras.utils.set_random_seed(run_settings.seed)
        self.schedule = phases_lib.schedule(plans)
        self.engine = engines.make(
            engine_name,
            where,
            plans,
            config=config,
            optimizer=run_settings.optimizer,
            schedule=self.schedule,
            precision=run_settings.precision,
            model_dir=model_dir,
            keep_checkpoints=run_settings.keep_checkpoints,
            clip_norm=run_settings.clip_norm,
            jit_compile=run_settings.jit_compile,
            input_pipelines=run_settings.input_pipelines,
            **engine_options,
        )
        run_dir.check_disk(model_dir, self.engine.checkpoint_bytes())
        self.latest = self.engine.latest()
        self.saved = identity.read(model_dir)  # the run.json found, or None
        self.progress = self.identity = None

    def check(self, run):
        """Stops unless model_dir holds this run (`identity.describe`) or none."""
        self.identity = run
        identity.check(self.model_dir, self.saved, run, self.latest)

    def claim(self, flags_text, headline, shown=None):
        """Writes the checked run's files and opens the progress report with
        `headline`; returns the `Progress`."""
        engine = self.engine
        if engine.is_chief:
            identity.write(self.model_dir, self.identity)
            run_dir.write_text(self.model_dir, "operative_config.gin", gin.operative_config_str())
            if flags_text is not None:
                run_dir.write_text(self.model_dir, "flags.txt", flags_text)
        self.progress = Progress(
            self.model_dir,
            len(self.plans),
            tensorboard=self.settings.tensorboard,
            write=engine.is_chief,
            shown=shown,
        )
        self.progress.message(headline)
        for note in self.settings.notes:
            self.progress.message(note)
        return self.progress

    def remove_partial_saves(self):
        removed = self.engine.remove_partial_saves()
        if removed:
            self.progress.message(
                f"removed the partial files of a failed save: {', '.join(removed)}"
            )

    def finished(self):
        """The newest checkpoint ends the last phase: nothing left to train."""
        return self.latest is not None and self.latest.step >= self.plans[-1].last_step

    def extends(self):
        """The step at which the run in model_dir finished, when these
        phases ask for more steps; else None."""
        if self.latest is None or self.saved is None or self.finished():
            return None
        done = sum(phase["steps"] for phase in self.saved["phases"])
        return done if self.latest.step >= done else None

    def keep_finished(self, outputs):
        """Before an extension trains a step: says so, and keeps the finished
        run's `outputs` (names in model_dir) and its final checkpoint in
        `model_dir/finished-<step>/`, which the extension never touches."""
        step = self.extends()
        if step is None:
            return
        last = self.plans[-1].last_step
        kept = os.path.join(self.model_dir, f"finished-{step}")
        self.progress.message(
            f"the run in model_dir finished at step {step}; these phases ask for {last} steps: "
            f"{last - step} more, whose exports will replace {', '.join(outputs)}. The finished "
            f"run's are kept in {kept} with its final checkpoint"
        )
        if self.engine.is_chief and not tf.io.gfile.exists(kept):
            _copy_aside(self.model_dir, outputs, self.latest.path, kept)

    def say_where_it_starts(self, finished, resuming, outputs):
        """Restores a finished run's weights (for the job's ending) and says
        so with `finished`, or says a resume with `resuming` (both
        formatted with the checkpoint's `step`, `path`, `phase`), after
        keeping aside the `outputs` of a finished run these phases extend."""
        latest = self.latest
        if self.finished():
            self.engine.restore(latest)
            self.progress.message(finished.format(**latest._asdict()))
        elif latest:
            self.keep_finished(outputs)
            self.progress.message(
                resuming.format(**{**latest._asdict(), "phase": latest.phase + 1})
            )

    def run_phases(self, files, start_phase, ending, recovery, loop_settings, **loop_options):
        """Runs each phase not done before (`start_phase(plan, files,
        resume)` readies it on the engine), then `ending(summary)` unless
        preempted; returns the summary: the last figures of training and
        evaluation (a finished run's from its log), whether the run stopped
        early or was preempted, its step, model and the exit status a
        preempted job ends with."""
        engine, latest = self.engine, self.latest
        summary = {"stopped_early": False, "preempted": False, "eval": None, "train": None}
        if self.finished():  # nothing to train: the figures it ended with
            summary.update(last_figures(self.model_dir))
        with contextlib.closing(self.progress), PreemptionWatcher() as preemption:
            loop = Loop(
                engine,
                loop_settings,
                recovery,
                self.progress,
                schedule=self.schedule,
                config=self.config,
                plans=self.plans,
                preemption=preemption,
                saved_step=latest.step if latest else None,
                **loop_options,
            )
            for plan, phase_files in zip(self.plans, files):
                if latest is not None and latest.step >= plan.last_step:
                    continue  # done before the restart
                start_phase(plan, phase_files, latest)
                latest = None
                summary.update(loop.run_phase(plan, phase_files))
                if summary["stopped_early"] or summary["preempted"]:
                    break
            if not summary["preempted"]:
                ending(summary)
        summary.update(
            step=engine.step,
            model=engine.model,
            optimizer=engine.optimizer,
            exit_status=preemption.exit_status,
        )
        return summary


def _copy_aside(model_dir, outputs, checkpoint, kept):
    """Copies `outputs` and the checkpoint's files (a path prefix, or a
    folder) into `kept`, through a temporary folder renamed last: a
    `finished-<step>` folder is whole."""
    # Object stores have no folder rename: there the copy goes in place.
    partial = f"{kept}.partial" if "://" not in kept else kept
    if partial != kept and tf.io.gfile.exists(partial):
        tf.io.gfile.rmtree(partial)
    targets = [(os.path.join(model_dir, name), os.path.join(partial, name)) for name in outputs]
    folder = os.path.join(partial, "checkpoint")
    if tf.io.gfile.isdir(checkpoint):
        targets.append((checkpoint, os.path.join(folder, os.path.basename(checkpoint))))
    else:
        for path in tf.io.gfile.glob(f"{checkpoint}*"):
            targets.append((path, os.path.join(folder, os.path.basename(path))))
    for source, target in targets:
        if tf.io.gfile.isdir(source):
            copy_tree(source, target)
        elif tf.io.gfile.exists(source):
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(source, target)
    if partial != kept:
        tf.io.gfile.rename(partial, kept)
