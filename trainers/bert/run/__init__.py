"""A run's life, the same for pretraining and fine-tuning and for every
engine.

    phases       training phases as data, and their learning-rate schedule
    identity     what shapes a run's saved state (run.json), checked on restart
    run_dir      the files of model_dir and the checks before any write
    loop         the host loop of one phase: steps, evaluation, checkpoints
    recovery     non-finite steps and loss spikes: roll back to a good checkpoint
    preemption   SIGTERM and Ctrl-C: save and stop at the next host loop
    progress     progress lines, TensorBoard and log.jsonl
    checkpoint   what the loop knows of a saved checkpoint
    flops, noise_scale   figures a run reports: MFU, the gradient noise scale
"""
