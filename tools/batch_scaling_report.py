"""The batch-size study's reading of its runs (`batch_scaling_study.py`):
the best trial of a cell, the critical batch fitted to steps to target, the
tables, the CSV files and the plot. Plain data in, files out; no training.

A run (a "trial") is a dict: protocol, optimizer, batch_size,
learning_rate, warmup_steps, warmup_fraction, seed, reached (bool),
steps_to_target (None for a miss), max_steps, mlm_accuracy (at the stop),
noise_scale (B_simple at the stop, None where not measured), wall_seconds.
"""

import csv
import math
import statistics

TRIAL_FIELDS = (
    "protocol",
    "optimizer",
    "batch_size",
    "seed",
    "learning_rate",
    "warmup_fraction",
    "warmup_steps",
    "max_steps",
    "reached",
    "steps_to_target",
    "mlm_accuracy",
    "noise_scale",
    "wall_seconds",
)


def best(trials):
    """The cell's result: the trial that reached the target in the fewest
    steps; if none did, the one with the highest accuracy (a miss)."""
    hits = [t for t in trials if t["reached"]]
    if hits:
        return min(hits, key=lambda t: (t["steps_to_target"], -t["mlm_accuracy"]))
    return max(trials, key=lambda t: t["mlm_accuracy"])


def critical_batch(cells):
    """McCandlish et al.'s model of steps to a target, S(B) = S_min (1 +
    B_crit / B), fitted by least squares on the relative error (S is linear
    in 1 / B) to the cells that reached it. Returns (S_min, B_crit): at
    B_crit the steps are twice the fewest possible; B_crit is inf when the
    steps fall as fast as 1 / B or faster (no knee within the batches), and
    None with fewer than two hits."""
    hits = [(c["batch_size"], c["steps_to_target"]) for c in cells if c["reached"]]
    if len(hits) < 2:
        return None
    # Minimise sum ((a + c / B - S) / S)^2 over a = S_min, c = S_min B_crit.
    rows = [(1.0 / s, 1.0 / (b * s), 1.0) for b, s in hits]  # (a, c) coefficients, target 1
    saa = sum(x * x for x, _, _ in rows)
    scc = sum(y * y for _, y, _ in rows)
    sac = sum(x * y for x, y, _ in rows)
    sa = sum(x for x, _, _ in rows)
    sc = sum(y for _, y, _ in rows)
    det = saa * scc - sac * sac
    if det <= 0:
        return None
    a = (sa * scc - sc * sac) / det
    c = (saa * sc - sac * sa) / det
    if a <= 0:
        return (0.0, math.inf)
    return (a, max(c, 0.0) / a)


def noise_scale(cells):
    """The median gradient noise scale measured at the stop of the cells
    that reached the target (None where none measured it)."""
    values = [c["noise_scale"] for c in cells if c["reached"] and c.get("noise_scale")]
    return statistics.median(values) if values else None


def write_csv(path, rows, fields=TRIAL_FIELDS):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _steps(cell):
    if cell["reached"]:
        return f"{cell['steps_to_target']}"
    return f"miss ({cell['mlm_accuracy']:.3f} at {cell['max_steps']})"


def _cell_text(cell):
    return (
        f"{_steps(cell)} (lr {cell['learning_rate']:.3g}, warmup {cell['warmup_fraction']:.3f}, "
        f"{cell['wall_seconds']:.0f} s)"
    )


def _batch_text(value):
    if value is None:
        return "-"
    return "beyond the batches" if math.isinf(value) else f"{value:.0f}"


def tables(results, repeats, settings):
    """Markdown: steps to target per protocol, the critical batch per
    optimizer and protocol against the measured noise scale, the repeated
    cells, the settings. `results`: {(protocol, optimizer): [cells by batch]}."""
    labels = list(dict.fromkeys(o for _, o in results))
    batches = sorted({c["batch_size"] for cells in results.values() for c in cells})
    lines = []
    for protocol, title in (("paper", "the paper's protocol"), ("tuned", "tuned per batch")):
        if not any(p == protocol for p, _ in results):
            continue
        lines += [
            f"## Steps to held-out masked-LM accuracy {settings['target']}, {title}",
            "",
            "Each cell: optimizer steps to the target (peak learning rate, warmup as a fraction "
            "of the step cap, wall time of that run); a miss gives the accuracy at the cap.",
            "",
            "| batch | perfect scaling | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 2) + "|",
        ]
        for batch in batches:
            perfect = settings["perfect_steps"] * batches[0] / batch
            cells = []
            for label in labels:
                cell = next(
                    (c for c in results.get((protocol, label), []) if c["batch_size"] == batch),
                    None,
                )
                cells.append("-" if cell is None else _cell_text(cell))
            lines.append(f"| {batch} | {perfect:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Where each optimizer leaves perfect scaling",
        "",
        "B_crit: S(B) = S_min (1 + B_crit / B) fitted to the steps above (at B_crit a batch "
        "takes twice the fewest steps). B_noise: the gradient noise scale B_simple the trainer "
        "measured at the target (median over the cells that reached it with several "
        "micro-batches per update).",
        "",
        "| optimizer | protocol | S_min | B_crit | B_noise |",
        "|---|---|---|---|---|",
    ]
    for (protocol, label), cells in results.items():
        fit = critical_batch(cells)
        s_min = "-" if fit is None else f"{fit[0]:.0f}"
        b_crit = "-" if fit is None else _batch_text(fit[1])
        lines.append(
            f"| {label} | {protocol} | {s_min} | {b_crit} | {_batch_text(noise_scale(cells))} |"
        )
    if repeats:
        lines += [
            "",
            "## The same setting with another seed",
            "",
            "| optimizer | batch | seed | steps to target | held-out accuracy at the stop |",
            "|---|---|---|---|---|",
        ]
        for trial in repeats:
            lines.append(
                f"| {trial['optimizer']} | {trial['batch_size']} | {trial['seed']} | "
                f"{_steps(trial)} | {trial['mlm_accuracy']:.4f} |"
            )
    lines += ["", "## Settings", ""]
    lines += [f"- {name}: {value}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def plot(results, settings, path):
    """Steps to target against batch size on log-log axes: one line per
    optimizer and protocol (tuned solid, paper dashed; a miss drawn at the
    cap, hollow), the perfect-scaling line, and each optimizer's measured
    noise scale as a dotted vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    labels = list(dict.fromkeys(o for _, o in results))
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    batches = sorted({c["batch_size"] for cells in results.values() for c in cells})
    for (protocol, label), cells in results.items():
        cells = sorted(cells, key=lambda c: c["batch_size"])
        style = "-" if protocol == "tuned" else "--"
        steps = [c["steps_to_target"] if c["reached"] else c["max_steps"] for c in cells]
        x = [c["batch_size"] for c in cells]
        axes.plot(x, steps, style, color=colours[label], label=f"{label} ({protocol})")
        for cell, y in zip(cells, steps):
            face = colours[label] if cell["reached"] else "none"
            axes.plot(cell["batch_size"], y, "o", color=colours[label], markerfacecolor=face)
    perfect = [settings["perfect_steps"] * batches[0] / b for b in batches]
    axes.plot(batches, perfect, ":", color="black", label="perfect scaling")
    for label in labels:
        cells = results.get(("tuned", label), [])
        value = noise_scale(cells)
        if value is not None:
            axes.axvline(value, color=colours[label], linestyle=":", alpha=0.7)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(batches, [str(b) for b in batches])
    axes.set_xlabel("global batch size (sequences); dotted verticals: measured noise scale")
    axes.set_ylabel(f"optimizer steps to held-out masked-LM accuracy {settings['target']}")
    axes.set_title(f"BERT-{settings['model']}: steps to target (hollow: missed by the step cap)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
