"""The train and evaluation steps under a tf.distribute strategy.

One call of the train step is one optimizer update of the global batch:

1. each replica sums the task's normalisers (pretraining: masked-LM weights
   and sequences) of its part of the batch; one small all-reduce gives the
   global totals, so every micro-batch loss is normalised by the whole batch
   (k accumulated micro-batches then give exactly the gradient of one batch
   k times the size);
2. each replica accumulates the gradients of its k micro-batches (one
   XLA-compiled loop);
3. one all-reduce sums gradients and metric sums over the replicas;
4. the global gradient norm is taken (after the all-reduce, so clipping
   sees the norm of the global batch, not of one replica's share), the
   gradients are clipped, and a step whose gradients are not finite is
   skipped; with several micro-batches or replicas, each micro-batch's
   squared gradient norm rides along in the all-reduce for the gradient
   noise scale (`noise_scale`);
5. in cross-replica context (`merge_call`), the update is applied only if
   the step is finite (with per-variable learning-rate factors, each
   variable's change is then scaled by its factor): `lamb_tf` optimizers
   take the reduced gradients there, so no second all-reduce runs. Keras' built-in optimizers always
   all-reduce inside `apply`; they are called back in replica context with
   the reduced gradients divided by the replica count (the sum is then the
   same), at the cost of a second all-reduce.
"""

import tensorflow as tf

from lamb_tf import LayerwiseOptimizer
from trainers.bert.engines.tf_engine import strategies
from trainers.bert.engines.tf_engine.loss_scale import NoLossScale
from trainers.bert.model import tasks

SUM = tf.distribute.ReduceOp.SUM


class Steps:
    """`train(iterator, num_steps)` and `evaluate(iterator, num_steps)`,
    each one `tf.function` looping on the device for `num_steps` steps
    (several steps per host call), returning figures summed over them.

    Args:
        model, optimizer: built under `strategy.scope()`.
        task: what the model computes (`tasks`: inputs, sums, loss).
        rate_factors: a learning-rate factor per trainable variable (the
            task's layer-wise decay), or None. Exact for optimizers whose
            step is linear in the learning rate (AdamW, LAMB, LARS); costs
            a copy of the variables whose factor is not 1 during the update.
        step: the global update counter (an int64 variable); advanced by
            each update that is applied.
        accumulation_steps: micro-batches per replica per update.
        clip_norm: global gradient-norm clipping before the optimizer
            (None: off).
        loss_scale: a `DynamicLossScale` for float16, else `NoLossScale()`.
        jit_compile: XLA-compile the forward and backward passes.
        split_batch: the iterator yields this worker's whole batch (a plain,
            checkpointable `tf.data` iterator), split here among the local
            replicas; False: a distributed iterator (TPU) yields per-replica
            values already.
        noise_scale: also sum, per update, each micro-batch's squared
            gradient norm (one more pass over the gradients per
            micro-batch; `noise_scale.GradientNoiseScale` reads it).
    """

    def __init__(
        self,
        model,
        optimizer,
        strategy,
        step,
        accumulation_steps=1,
        clip_norm=None,
        loss_scale=None,
        jit_compile=True,
        split_batch=True,
        task=tasks.PRETRAINING,
        rate_factors=None,
        noise_scale=False,
    ):
        self.model = model
        self.noise_scale = noise_scale
        self.task = task
        self.rate_factors = rate_factors
        self.optimizer = optimizer
        self.strategy = strategy
        self.step = step
        self.accumulation_steps = int(accumulation_steps)
        self.clip_norm = clip_norm
        self.loss_scale = loss_scale or NoLossScale()
        self.split_batch = split_batch
        self._gradients = tf.function(self._micro_batch_gradients, jit_compile=jit_compile)
        self._forward = tf.function(self._forward_sums, jit_compile=jit_compile)
        self.train = tf.function(self._train_loop)
        self.evaluate = tf.function(self._eval_loop)

    # ------------------------------------------------------------- training

    def _train_loop(self, iterator, num_steps):
        """Returns (metric sums over applied steps, last gradient norm,
        number of skipped non-finite steps, how many of the last steps were
        non-finite in a row, and the sums over applied steps of |G_b|^2 and
        |G_B|^2 (`noise_scale`; zeros when not measured))."""
        sums = tf.zeros([len(self.task.sums)])
        norm = tf.constant(0.0)
        skipped = tf.constant(0, tf.int64)
        trailing = tf.constant(0, tf.int64)
        noise = tf.zeros([2])
        for _ in tf.range(num_steps):
            step_sums, norm, finite, step_noise = self._local(
                self.strategy.run(self._replica_step, args=(self._next(iterator),))
            )
            sums += tf.where(finite, step_sums, 0.0)
            noise += tf.where(finite, step_noise, 0.0)
            skipped += tf.cast(~finite, tf.int64)
            trailing = tf.where(finite, tf.zeros_like(trailing), trailing + 1)
        return sums, norm, skipped, trailing, noise

    def _replica_step(self, batch):
        context = tf.distribute.get_replica_context()
        totals = context.all_reduce(SUM, self.task.totals(batch))
        scale = self.loss_scale.scale
        grads, sums, squared = self._gradients(batch, totals, scale)
        # The micro-batches' squared norms ride along with the metric sums.
        reduced = context.all_reduce(SUM, [*grads, tf.concat([sums, [squared]], 0)])
        grads, sums, squared = reduced[:-1], reduced[-1][:-1], reduced[-1][-1]
        # Norm of the unscaled gradients; clipping the scaled ones at
        # clip_norm x scale is clipping the unscaled ones at clip_norm.
        scaled_norm = tf.linalg.global_norm(grads)
        norm = scaled_norm / scale
        # |G_b|^2: each of the m pieces' gradient is 1/m of a b-sequence
        # estimate of the gradient (the loss is normalised by the batch).
        pieces = self.accumulation_steps * self.strategy.num_replicas_in_sync
        noise = tf.stack([pieces * squared / tf.square(scale), tf.square(norm)])
        finite = tf.math.is_finite(scaled_norm) & tf.reduce_all(tf.math.is_finite(sums))
        if self.clip_norm is not None:
            grads, _ = tf.clip_by_global_norm(
                grads, self.clip_norm * self.loss_scale.scale, use_norm=scaled_norm
            )
        context.merge_call(self._apply, args=(grads, finite))
        return sums, norm, finite, noise

    def _micro_batch_gradients(self, batch, totals, scale):
        """Per replica: gradients of (loss of this replica's part of the
        batch, normalised by the global totals) x scale, summed over the
        micro-batches, the metric sums, and the sum of the micro-batches'
        squared gradient norms (0 when `noise_scale` is off)."""
        variables = self.model.trainable_variables
        k = self.accumulation_steps

        def one(micro):
            with tf.GradientTape() as tape:
                outputs = self.model({n: micro[n] for n in self.task.inputs}, training=True)
                sums = self.task.batch_sums(outputs, micro)
                scaled = self.task.loss(sums, totals) * scale
            grads = tape.gradient(scaled, variables)
            grads = [
                tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, variables)
            ]
            squared = _squared_norm(grads) if self.noise_scale else tf.constant(0.0)
            return grads, sums, squared

        if k == 1:
            return one(batch)
        micro = {n: tf.reshape(t, [k, -1, *t.shape[1:]]) for n, t in batch.items()}

        def body(i, grads, sums, squared):
            new_grads, new_sums, new_squared = one({n: t[i] for n, t in micro.items()})
            grads = [a + b for a, b in zip(grads, new_grads)]
            return i + 1, grads, sums + new_sums, squared + new_squared

        zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
        start = (0, zeros, tf.zeros([len(self.task.sums)]), tf.constant(0.0))
        _, grads, sums, squared = tf.while_loop(lambda i, *_: i < k, body, start)
        return grads, sums, squared

    def _apply(self, strategy, grads, finite):
        """Cross-replica context: the gradients are already summed."""
        finite = self._local(finite)
        tf.cond(finite, lambda: self._update(strategy, grads), lambda: False)
        self.loss_scale.update(finite)

    def _update(self, strategy, grads):
        variables = self.model.trainable_variables
        scaled = []
        if self.rate_factors is not None:
            scaled = [
                (v, f, tf.identity(v)) for v, f in zip(variables, self.rate_factors) if f != 1
            ]
        if isinstance(self.optimizer, LayerwiseOptimizer):
            self.optimizer.apply(grads, variables)
        else:
            # Back in replica context, where Keras all-reduces again.
            replicas = strategy.num_replicas_in_sync
            strategy.extended.call_for_each_replica(
                lambda grads: self.optimizer.apply([g / replicas for g in grads], variables),
                args=(grads,),
            )
        for variable, factor, before in scaled:  # x + f (x' - x): the step at f x the rate
            variable.assign(before + factor * (variable - before))
        self.step.assign_add(1)
        return True

    # ------------------------------------------------------------ evaluation

    def _eval_loop(self, iterator, num_steps):
        sums = tf.zeros([len(self.task.sums)])
        for _ in tf.range(num_steps):
            batch = self._next(iterator)
            sums += self._local(self.strategy.run(self._eval_replica, args=(batch,)))
        return sums

    def _eval_replica(self, batch):
        sums = self._forward(batch)
        return tf.distribute.get_replica_context().all_reduce(SUM, sums)

    def _forward_sums(self, batch):
        outputs = self.model({n: batch[n] for n in self.task.inputs}, training=False)
        return self.task.batch_sums(outputs, batch)

    def _next(self, iterator):
        batch = next(iterator)
        return split_among_replicas(self.strategy, batch) if self.split_batch else batch

    def _local(self, values):
        """A value every replica holds identically (after all-reduce)."""
        return tf.nest.map_structure(
            lambda v: self.strategy.experimental_local_results(v)[0], values
        )


def _squared_norm(grads):
    return tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads])


def split_among_replicas(strategy, batch):
    """A worker's batch -> per-replica values, each local replica its slice."""
    local = strategies.local_replicas(strategy)

    def replica_slice(context):
        index = context.replica_id_in_sync_group % local
        return tf.nest.map_structure(lambda t: tf.split(t, local)[index], batch)

    return strategy.experimental_distribute_values_from_function(replica_slice)
