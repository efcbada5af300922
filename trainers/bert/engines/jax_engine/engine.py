"""`JaxEngine`: what the host loop asks of a run on Keras' JAX backend.

It holds the model and optimizer as Keras objects and the training state
as JAX arrays replicated on every device (`steps.State`); each host call
runs several compiled steps, one per global batch, each batch read through
`tf.data` by this process and split over the devices (`devices.Devices`).
Checkpoints are orbax's (`checkpoints.Checkpointer`). The interface is
`tf_engine.TFEngine`'s; the Keras variables are brought up to date only
when the model is asked for (the encoder export, the summary).
"""

import jax
import numpy as np
from jax.experimental import multihost_utils

from lamb_tf import LayerwiseOptimizer
from trainers.bert import engines
from trainers.bert.data.input import inputs
from trainers.bert.engines.contract import StepResult
from trainers.bert.engines.jax_engine import checkpoints, devices, steps
from trainers.bert.model import bert as model_lib
from trainers.bert.model import tasks
from trainers.bert.run import noise_scale as noise_scale_lib
from trainers.bert.run.checkpoint import state_bytes


def input_pipelines(devices_, pipelines, plans):
    """The checked number of training input pipelines (None: one per process)."""
    return inputs.check_input_pipelines(pipelines, devices_.process_count, plans)


class JaxEngine:
    """Args:
    devices: a `devices.Devices`.
    config: the `model.BertConfig`.
    optimizer: called as `optimizer(learning_rate=0.0)`; each step writes
        the schedule's rate into its learning-rate variable.
    schedule: the learning rate over global steps.
    precision: "float32" or "mixed_bfloat16".
    model_dir: where checkpoints go.
    keep_checkpoints, clip_norm, input_pipelines: `train`'s.
    noise_scale: measure the gradient noise scale when an update is made
        of several micro-batches or devices (`train.gradient_noise_scale`).
    """

    xla_off = False  # JAX always compiles

    def __init__(
        self,
        devices_,
        config,
        optimizer,
        schedule,
        precision,
        model_dir,
        keep_checkpoints=3,
        clip_norm=None,
        input_pipelines=None,
        task=tasks.PRETRAINING,
        noise_scale=True,
    ):
        engines.check_precision("jax", precision)
        self.devices = devices_
        self.platform = devices_.platform
        self.description = devices_.describe()
        self.is_chief = devices_.process_index == 0
        self._schedule, self._clip_norm = schedule, clip_norm
        self._input_pipelines = input_pipelines
        self.task = task
        self._noise_scale = noise_scale
        self.noise_pieces = 1  # gradients per update measured: 1 is none
        with model_lib.dtype_policy(precision):
            self._model = task.build(config)
            self.optimizer = optimizer(learning_rate=0.0)
            self.optimizer.build(self._model.trainable_variables)
        self._state = devices_.replicate(steps.State.of(self._model, self.optimizer))
        self._synced = True  # the Keras variables hold the state
        self._phase = 0
        self._checkpointer = checkpoints.Checkpointer(model_dir, keep_checkpoints)
        self._eval_step = steps.make_eval_step(self._model, task)
        self._predict_step = steps.make_predict_step(self._model, task)
        self._all_finite = steps.make_finite_check()
        self._ratios = None
        if isinstance(self.optimizer, LayerwiseOptimizer):
            adapted = [r["layer_adaptation"] for r in self.optimizer.variable_rules.values()]
            index = [v.name for v in self.optimizer.variables].index("trust_ratio")
            self._ratios = (index, adapted)
        self._train_step = self._iterator = self._files = None

    @property
    def step(self):
        """The global step: optimizer updates applied so far."""
        return int(self._state.step)

    @property
    def model(self):
        """The Keras model, holding the current weights."""
        if not self._synced:
            state = jax.device_get(self._state)
            pairs = (
                (self._model.trainable_variables, state.trainable),
                (self._model.non_trainable_variables, state.non_trainable),
                (self.optimizer.variables, state.optimizer),
            )
            for variables, values in pairs:
                for variable, value in zip(variables, values):
                    variable.assign(value)
            self._synced = True
        return self._model

    def checkpoint_bytes(self):
        return state_bytes(self._model.weights + self.optimizer.variables)

    def measure_peak_flops(self, dtype):
        return devices.measure_peak_flops(dtype)

    # -------------------------------------------------------------- phases

    def start_phase(self, plan, files, seed, remasker=None, resume=None):
        """Readies `plan`'s phase: its input, and the state of `resume` when
        the job restarts (inside this phase the input goes on from its saved
        position)."""
        mid_phase = resume is not None and resume.phase == plan.index
        self._files = files
        self._iterator = self._input(
            plan, files.train, files.names, seed, True, remasker, self._input_pipelines
        )
        self._checkpointer.positions.track(self._iterator)
        if resume is not None:
            self._set_state(self._checkpointer.restore(resume, self._state, mid_phase))
        self._phase = plan.index
        if plan.phase.reset_optimizer and self.step == plan.first_step:
            # Fresh moments and iteration count (so bias correction restarts).
            zeros = jax.tree.map(np.zeros_like, jax.device_get(self._state.optimizer))
            self._set_state(self._state._replace(optimizer=self.devices.replicate(zeros)))
        pieces = noise_scale_lib.pieces(plan, self.devices.count)
        self.noise_pieces = pieces if self._noise_scale else 1
        self._train_step = steps.make_train_step(
            self._model,
            self.optimizer,
            self.devices.mesh,
            self._schedule,
            plan.accumulation_steps,
            self._clip_norm,
            self.task,
            noise_scale=self.noise_pieces > 1,
            rate_factors=self.task.rate_factors(self._model),
            compiler_options=self.devices.compiler_options,
        )

    def train(self, n):
        """`n` steps in one host call (`contract.StepResult`)."""
        outputs = []
        with inputs.read_errors_named(self._files.train):
            for _ in range(n):
                self._state, output = self._train_step(self._state, self._next(self._iterator))
                outputs.append(output)
        self._synced = False
        sums, norms, finite, noise = (np.asarray(x) for x in jax.device_get(list(zip(*outputs))))
        trailing = len(finite) - (np.flatnonzero(finite)[-1] + 1) if finite.any() else n
        skipped = int(n - finite.sum())
        return StepResult(sums.sum(0), float(norms[-1]), skipped, int(trailing), noise.sum(0))

    def evaluate(self, plan, files, n):
        """Metric sums over `n` held-out batches, read from their start."""
        iterator = self._input(plan, files.eval, files.names, 0, False, micro=True)
        total = 0.0
        with inputs.read_errors_named(files.eval):
            for _ in range(n):
                total = total + self._eval_step(self._state, self._next(iterator))
        return np.asarray(total)

    def predict(self, plan, files):
        """The task's `outputs` for every record of `files` (each with an
        `index` feature), as host arrays in index order. Every process reads
        all records in global batches of `micro_batch` per device (the last
        one padded, index -1) and puts its slice on its devices; every
        process gets every device's outputs."""
        d = self.devices
        batches = inputs.prediction_batches(
            files,
            self.task.parser(plan.phase, None),
            plan.micro_batch * d.count,
            d.process_index,
            d.process_count,
        )
        gathered = []
        with inputs.read_errors_named(files):
            for batch in batches:
                outputs = self._predict_step(self._state, self._on_devices(batch))
                gathered.append(multihost_utils.process_allgather(outputs, tiled=True))
        return inputs.in_index_order(gathered)

    def trust_ratios(self):
        """The last step's trust ratios of the adapted variables, or None."""
        if self._ratios is None:
            return None
        index, adapted = self._ratios
        return np.asarray(self._state.optimizer[index])[adapted]

    # --------------------------------------------------------- checkpoints

    def assign_weights(self, values):
        """Model variables from {variable path: array} (a warm start)."""
        model = self.model  # the current state in the Keras variables
        for variable in model.weights:
            if variable.path in values:
                variable.assign(values[variable.path])
        state = steps.State.of(model, self.optimizer, self.step)
        self._state = self.devices.replicate(state)

    def latest(self):
        return self._checkpointer.latest()

    def save(self):
        return self._checkpointer.save(self._state, self._phase)

    def remove_partial_saves(self):
        return self._checkpointer.remove_partial()

    def restore(self, checkpoint):
        """Weights, optimizer state and step of `checkpoint`; the input goes
        on from where it is (used to step over a bad stretch)."""
        self._set_state(self._checkpointer.restore(checkpoint, self._state))

    def state_is_finite(self):
        return bool(self._all_finite(self._state))

    def _set_state(self, state):
        self._state, self._synced = state, False

    # --------------------------------------------------------------- input

    def _input(self, plan, files, names, seed, shuffle, remasker=None, pipelines=None, micro=False):
        """This process's part of every global batch, a plain (so
        checkpointable) `tf.data` iterator."""
        batch = plan.micro_batch if micro else plan.per_replica_batch
        d = self.devices
        dataset = inputs.worker_dataset(
            plan,
            files,
            names,
            batch * d.local_count,
            pipelines or d.process_count,
            d.process_index,
            d.process_count,
            d.count,
            seed=seed,
            shuffle=shuffle,
            remasker=remasker,
            parse=self.task.parser(plan.phase, names),
        )
        return iter(dataset)

    def _next(self, iterator):
        return self._on_devices(next(iterator))

    def _on_devices(self, batch):
        """This process's part of a global batch, from `tf.data`."""
        return self.devices.batch({k: v.numpy() for k, v in batch.items()})
