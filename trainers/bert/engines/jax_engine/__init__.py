"""The trainer's JAX engine: Keras on its JAX backend, data parallel over
every device of every process (`devices`), compiled steps with gradient
accumulation (`steps`), orbax checkpoints (`checkpoints`), and what the host
loop asks of an engine (`engine.JaxEngine`)."""
