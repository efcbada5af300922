"""The compiled train and evaluation steps of the JAX engine.

One call of the train step is one optimizer update of the global batch, a
pure function of the state (`State`) and the batch:

1. the global totals (masked-LM weights, sequences) of the whole batch, so
   every micro-batch loss is normalised by the whole batch;
2. on each device (`shard_map` over the "batch" axis), the gradients of
   its k micro-batches summed by a `lax.scan`, then one `psum` of gradients
   and metric sums across the devices: one reduction per update (with
   `noise_scale`, each micro-batch's squared gradient norm is summed too);
3. the global gradient norm, clipping, and the non-finite check;
4. the optimizer's `stateless_apply`, with the learning rate of the
   schedule at this global step written into its learning-rate variable;
   a non-finite step keeps the old weights, optimizer state and step.

Dropout: the k micro-batches of the n devices are the update's n * k pieces
of m sequences, piece p the global batch's rows [p * m, (p + 1) * m), p the
device's position among all devices of all processes times k plus the
micro-batch's index. Each piece draws its masks from the model's seed states
folded with p (`jax.random.fold_in`): no two pieces share masks, and a
piece's masks depend on the seed states and p alone, the same on one device
accumulating four micro-batches as on four devices in two processes. The
seed states advance once per update, on a skipped step too (as on the
TensorFlow engine); they are in the state, so a resumed run draws the same
masks.

Nothing here imports TensorFlow.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from trainers.bert.engines.jax_engine.devices import BATCH
from trainers.bert.model import tasks


class State(NamedTuple):
    """The training state: lists of arrays in the order of the model's and
    the optimizer's variables, and the global step."""

    trainable: list
    non_trainable: list
    optimizer: list
    step: jax.Array

    @classmethod
    def of(cls, model, optimizer, step=0):
        return cls(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
            jnp.asarray(step, jnp.int32),
        )


def learning_rate_index(optimizer):
    """The position of the optimizer's learning-rate variable (made by
    `optimizer(learning_rate=<float>)`) among its variables."""
    found = [i for i, v in enumerate(optimizer.variables) if v.name == "learning_rate"]
    if len(found) != 1:
        raise ValueError(f"{type(optimizer).__name__} has no single learning_rate variable")
    return found[0]


SEED_STATE = "seed_generator_state"  # the name of a Keras SeedGenerator's variable


def seed_indices(model):
    """The positions of the dropout seed states among the model's
    non-trainable variables (none without dropout)."""
    return [i for i, v in enumerate(model.non_trainable_variables) if v.name == SEED_STATE]


def piece_seeds(non_trainable, seeds, piece):
    """`non_trainable` with each seed state at `seeds` folded with `piece`:
    the states this piece's masks are drawn from."""
    folded = list(non_trainable)
    for i in seeds:
        folded[i] = jax.random.fold_in(non_trainable[i], piece)
    return folded


def advance_seeds(non_trainable, seeds):
    """The seed states of the next update: the counter, their second word,
    plus one, as Keras' `SeedGenerator.next` does. Not the states the model
    returns: those went on from the folded ones, which differ per device.
    One is enough however many masks a state gave in a call, since the
    next update's folding hashes the whole state."""
    advanced = list(non_trainable)
    for i in seeds:
        advanced[i] = non_trainable[i] + jnp.asarray([0, 1], non_trainable[i].dtype)
    return advanced


def make_train_step(
    model,
    optimizer,
    mesh,
    schedule,
    accumulation_steps=1,
    clip_norm=None,
    task=tasks.PRETRAINING,
    noise_scale=False,
    rate_factors=None,
    compiler_options=None,
):
    """`step(state, batch) -> (state, (sums, gradient norm, finite, noise))`,
    jitted (with XLA's `compiler_options`: `devices.Devices.compiler_options`),
    the state's buffers donated; `noise` is [|G_b|^2, |G_B|^2] for
    the gradient noise scale (`trainers.bert.run.noise_scale`; |G_b|^2 is 0
    unless `noise_scale`), zeros for a skipped step. `rate_factors`: a
    learning-rate factor per trainable variable (the task's layer-wise
    decay), or None."""
    k = int(accumulation_steps)
    pieces = k * mesh.size
    rate_index = learning_rate_index(optimizer)
    seeds = seed_indices(model)

    def loss(trainable, non_trainable, micro, totals):
        outputs, non_trainable = model.stateless_call(
            trainable, non_trainable, {n: micro[n] for n in task.inputs}, training=True
        )
        sums = task.batch_sums(outputs, micro)
        return task.loss(sums, totals), (sums, non_trainable)

    gradients = jax.value_and_grad(loss, has_aux=True)

    def on_device(trainable, non_trainable, batch, totals):
        micro = jax.tree.map(lambda t: t.reshape(k, -1, *t.shape[1:]), batch)
        # Weights marked as differing per device ("varying"): their gradients
        # then stay per device through the scan, reduced once after it (the
        # gradient of replicated weights would be reduced at every micro-batch).
        trainable = jax.lax.pcast(trainable, (BATCH,), to="varying")
        first_piece = jax.lax.axis_index(BATCH) * k  # among all processes' devices

        def add(carry, inputs):
            grads, sums, non_trainable = carry
            micro_batch, index = inputs
            drawn = piece_seeds(non_trainable, seeds, first_piece + index)
            (_, (new_sums, new_non_trainable)), new_grads = gradients(
                trainable, drawn, micro_batch, totals
            )
            # The seed states stay the update's for every piece; the rest goes on.
            non_trainable = [
                old if i in seeds else new
                for i, (old, new) in enumerate(zip(non_trainable, new_non_trainable))
            ]
            if noise_scale:  # this micro-batch's squared norm rides with the sums
                new_sums = jnp.concatenate([new_sums, _squared_norm(new_grads)[None]])
            return (jax.tree.map(jnp.add, grads, new_grads), sums + new_sums, non_trainable), None

        width = len(task.sums) + int(noise_scale)
        sums = jax.lax.pcast(jnp.zeros([width]), (BATCH,), to="varying")
        start = (jax.tree.map(jnp.zeros_like, trainable), sums, non_trainable)
        (grads, sums, non_trainable), _ = jax.lax.scan(add, start, (micro, jnp.arange(k)))
        return jax.lax.psum((grads, sums), BATCH) + (non_trainable,)

    per_device = jax.shard_map(
        on_device, mesh=mesh, in_specs=(P(), P(), P(BATCH), P()), out_specs=(P(), P(), P())
    )

    def step(state, batch):
        totals = task.totals(batch)
        grads, sums, non_trainable = per_device(state.trainable, state.non_trainable, batch, totals)
        norm = jnp.sqrt(_squared_norm(grads))
        # |G_b|^2: each piece's gradient is 1/m of a b-sequence estimate.
        small = pieces * sums[-1] if noise_scale else jnp.zeros([])
        sums = sums[: len(task.sums)]
        noise = jnp.stack([small, jnp.square(norm)])
        finite = jnp.isfinite(norm) & jnp.all(jnp.isfinite(sums))
        if clip_norm is not None:  # as tf.clip_by_global_norm
            scale = clip_norm / jnp.maximum(norm, clip_norm)
            grads = [g * scale.astype(g.dtype) for g in grads]
        optimizer_values = list(state.optimizer)
        rate = optimizer_values[rate_index]
        optimizer_values[rate_index] = jnp.asarray(schedule(state.step), rate.dtype)
        trainable, optimizer_values = optimizer.stateless_apply(
            optimizer_values, grads, state.trainable
        )
        if rate_factors is not None:  # x + f (x' - x): the step at f x the rate
            trainable = [
                new if f == 1 else old + f * (new - old)
                for f, old, new in zip(rate_factors, state.trainable, trainable)
            ]

        def kept(new, old):
            return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)

        new_state = State(
            kept(trainable, state.trainable),
            advance_seeds(non_trainable, seeds),
            kept(optimizer_values, state.optimizer),
            state.step + finite.astype(state.step.dtype),
        )
        return new_state, (
            jnp.where(finite, sums, 0.0),
            norm,
            finite,
            jnp.where(finite, noise, 0.0),
        )

    return jax.jit(step, donate_argnums=0, compiler_options=compiler_options or None)


def _squared_norm(grads):
    return sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in grads)


def make_eval_step(model, task=tasks.PRETRAINING):
    """`sums(state, batch)`: the metric sums of a held-out batch, jitted;
    the batch split over the devices, the sums reduced by the compiler."""

    def sums(state, batch):
        return task.batch_sums(_inference(model, task, state, batch), batch)

    return jax.jit(sums)


def make_predict_step(model, task):
    """`outputs(state, batch)`: the task's `outputs` of a batch and its
    `index`, jitted; the batch split over the devices."""

    def outputs(state, batch):
        values = _inference(model, task, state, batch)
        return {"index": batch["index"], **{n: values[n] for n in task.outputs}}

    return jax.jit(outputs)


def _inference(model, task, state, batch):
    """The model's outputs for `batch` at `state`'s weights, dropout off."""
    outputs, _ = model.stateless_call(
        state.trainable, state.non_trainable, {n: batch[n] for n in task.inputs}, training=False
    )
    return outputs


def make_finite_check():
    """`all_finite(state)`: every float of the weights and optimizer state
    is finite (checked before each save)."""

    def all_finite(state):
        values = [
            v for v in state.trainable + state.optimizer if jnp.issubdtype(v.dtype, jnp.floating)
        ]
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in values]))

    return jax.jit(all_finite)
