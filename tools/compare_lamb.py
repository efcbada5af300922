"""Print, as a Markdown table, what `lamb_tf.LAMB` and `keras.optimizers.Lamb`
do on the tensorflow-addons LAMB test problem (float64, three steps).

    python tools/compare_lamb.py
"""

from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import numpy as np  # noqa: E402

import lamb_tf  # noqa: E402

PROBLEM = "var0 = [1, 2], g0 = [0.1, 0.1]; var1 = [3, 4], g1 = [0.01, 0.01]; lr 1e-3"


def run(optimizer, steps=3):
    var0 = keras.Variable([1.0, 2.0], dtype="float64")
    var1 = keras.Variable([3.0, 4.0], dtype="float64")
    grads = [np.array([0.1, 0.1]), np.array([0.01, 0.01])]
    for _ in range(steps):
        optimizer.apply_gradients(zip(grads, [var0, var1]))
    return np.concatenate([var0.numpy(), var1.numpy()])


def main():
    rows = [
        ("lamb_tf.LAMB, weight_decay=0", lamb_tf.LAMB(1e-3)),
        ("keras.optimizers.Lamb, weight_decay=None", keras.optimizers.Lamb(1e-3)),
        ("lamb_tf.LAMB, weight_decay=0.01", lamb_tf.LAMB(1e-3, weight_decay=0.01)),
        (
            "keras.optimizers.Lamb, weight_decay=0.01",
            keras.optimizers.Lamb(1e-3, epsilon=1e-6, weight_decay=0.01),
        ),
    ]
    print(f"After 3 steps of {PROBLEM}:\n")
    print("| optimizer | var0 | var1 |")
    print("|---|---|---|")
    for name, optimizer in rows:
        x = run(optimizer)
        print(f"| {name} | [{x[0]:.10f}, {x[1]:.10f}] | [{x[2]:.10f}, {x[3]:.10f}] |")


if __name__ == "__main__":
    main()
