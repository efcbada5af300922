"""What pretraining gave: fine-tune a pretrained encoder and the same encoder
shape from random weights on the same task, with the same settings and
seeds, and print both scores side by side.

    python -m trainers.bert.main --gin_file=gin_configs/tiny_cpu.gin --model_dir=/tmp/bert_tiny
    python tools/finetune_baseline.py --encoder=/tmp/bert_tiny/encoder

Each run is the fine-tuning command (`trainers.bert.finetune.main`) in its
own process, with `--random_init` for the baseline; the task and settings
come from `--gin_file` (default: the embedded default). Writes
`OUTPUT_DIR/results.json` and prints a table: each seed's dev score, the
mean and standard deviation over seeds, and the difference.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def finetune(encoder, gin_file, model_dir, seed, random_init, extra):
    command = [
        sys.executable,
        "-m",
        "trainers.bert.finetune.main",
        f"--gin_file={gin_file}",
        f"--encoder={encoder}",
        f"--model_dir={model_dir}",
        f"--gin_param=finetune.seed = {seed}",
        "--gin_param=finetune.tensorboard = False",
        *extra,
        *(["--random_init"] if random_init else []),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"finetune_baseline: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        results = json.load(f)
    return results, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", required=True, help="the pretrained encoder's preset folder")
    parser.add_argument(
        "--gin_file", default=os.path.join(ROOT, "gin_configs", "finetune_tiny_cpu.gin")
    )
    parser.add_argument("--gin_param", action="append", default=[], help="more gin bindings")
    parser.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per encoder")
    parser.add_argument("--output_dir", default=None, help="default: a new temporary folder")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds={args.seeds}: give at least 1")
    if not os.path.isdir(args.encoder):
        parser.error(f"--encoder={args.encoder}: no such folder")
    output = args.output_dir or tempfile.mkdtemp(prefix="finetune_baseline-")
    extra = [f"--gin_param={p}" for p in args.gin_param]
    scores = {"pretrained": [], "random": []}
    metric = None
    for seed in range(args.seeds):
        for init in scores:
            model_dir = os.path.join(output, f"{init}-seed{seed}")
            results, seconds = finetune(
                args.encoder, args.gin_file, model_dir, seed, init == "random", extra
            )
            split = next(k for k in results if k != "step")
            metric = metric or next(iter(results[split]))
            scores[init].append(results[split][metric])
            print(
                f"{init:10s} seed {seed}: {split} {metric} {results[split][metric]:.4f}  "
                f"({seconds:.0f} s)",
                flush=True,
            )
    summary = {
        "encoder": args.encoder,
        "gin_file": args.gin_file,
        "metric": metric,
        "scores": scores,
    }
    print(f"\n| encoder | {metric} (mean +- sd over {args.seeds} seeds) |\n|---|---|")
    for init, values in scores.items():
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[f"{init}_mean"] = statistics.mean(values)
        print(f"| {init} | {statistics.mean(values):.4f} +- {sd:.4f} |")
    gain = summary["pretrained_mean"] - summary["random_mean"]
    print(f"\npretraining gain: {gain:+.4f} {metric}")
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump({**summary, "gain": gain}, f, indent=1)
    print(f"wrote {os.path.join(output, 'results.json')}")


if __name__ == "__main__":
    main()
