import json

import pytest

from tests.scripts import run_tool
from trainers.bert.data.shards import builtin
from trainers.bert.formats import export
from trainers.bert.model import bert as model_lib


@pytest.mark.slow
def test_pretrained_and_random_runs_side_by_side(tmp_path):
    config = model_lib.preset("tiny", vocabulary_size=4096, max_sequence_length=64)
    encoder = export.export_encoder(
        str(tmp_path), model_lib.build_backbone(config), builtin.KEPT_VOCAB
    )
    output = tmp_path / "runs"
    stdout = run_tool(
        "tools/finetune_baseline.py",
        f"--encoder={encoder}",
        "--seeds=1",
        f"--output_dir={output}",
        "--gin_param=finetune.epochs = 0.25",
        "--gin_param=finetune.max_seq_length = 32",
        timeout=600,
    )
    results = json.loads((output / "results.json").read_text())
    assert results["metric"] == "accuracy" and set(results["scores"]) == {"pretrained", "random"}
    assert all(0.0 <= v[0] <= 1.0 for v in results["scores"].values())
    for init in ("pretrained", "random"):
        assert f"| {init} | {results[f'{init}_mean']:.4f} +- 0.0000 |" in stdout
        # Each run is the fine-tuning command, the baseline with --random_init.
        flags = (output / f"{init}-seed0" / "flags.txt").read_text()
        assert ("--random_init" in flags) == (init == "random")
    assert "pretraining gain:" in stdout
