"""The tf.distribute engine: TPUStrategy, multi-worker and mirrored
strategies, the default one on one CPU.

    engine       TFEngine: the run's state, steps, input and checkpoints
    strategies   the strategy from the flags
    steps        train/eval steps: accumulation, one all-reduce, clipping, skipping
    checkpoints  checkpoints with per-worker input positions
    loss_scale   dynamic loss scaling for float16
"""
