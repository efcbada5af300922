"""Train a small Keras classifier with `lamb_tf.LAMB` at a large batch and
print the loss falling, with the range of the per-layer trust ratios.

    python tools/quickstart.py              # 11 s on a 2-core CPU
"""

import argparse

from trainers.bert import cli

cli.quiet_tensorflow()  # before TensorFlow loads: no native start-up lines

import keras  # noqa: E402
import numpy as np  # noqa: E402

import lamb_tf  # noqa: E402


def make_data(n, features=32, classes=4, seed=0):
    """Labels from a random two-layer teacher network."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    hidden = np.tanh(x @ rng.normal(size=(features, 64)))
    y = np.argmax(hidden @ rng.normal(size=(64, classes)), axis=1)
    return x, y


class TrustRatioLog(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        ratios = self.model.optimizer.trust_ratios
        adapted = [r for path, r in ratios.items() if "kernel" in path]
        print(
            f"epoch {epoch + 1:2d}  loss {logs['loss']:.4f}  "
            f"accuracy {logs['accuracy']:.3f}  "
            f"trust ratio (kernels) {min(adapted):.3f}..{max(adapted):.3f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=2048)
    parser.add_argument("--examples", type=int, default=32768)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    x, y = make_data(args.examples)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(256, activation="relu", name="dense_1"),
            keras.layers.LayerNormalization(name="layer_norm"),
            keras.layers.Dense(256, activation="relu", name="dense_2"),
            keras.layers.Dense(4, name="logits"),
        ]
    )
    steps = args.epochs * (args.examples // args.batch_size)
    schedule = lamb_tf.schedules.WarmupPolynomialDecay(
        peak_learning_rate=0.01, total_steps=steps, warmup_steps=steps // 10, power=0.5
    )
    optimizer = lamb_tf.LAMB(
        learning_rate=schedule,
        weight_decay=0.01,
        exclude_from_weight_decay=["layer_norm", "bias"],
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(
        f"{model.count_params():,} parameters, {args.examples:,} examples, "
        f"batch {args.batch_size}, {steps} LAMB steps"
    )
    history = model.fit(
        x,
        y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[TrustRatioLog()],
    )
    losses = history.history["loss"]
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
