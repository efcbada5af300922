import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_benchmark_data_reports_every_rate(tmp_path):
    out = tmp_path / "data.json"
    proc = subprocess.run(
        [
            sys.executable,
            "tools/benchmark_data.py",
            "--megabytes=0.5",
            "--batch_size=8",
            f"--json_out={out}",
        ],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| creation, 2 processes |" in proc.stdout
    result = json.loads(out.read_text())
    assert result["raw_mb_per_s"] > 0 and result["model_sequences_per_s"] > 0
    assert set(result["creation_mb_per_s"]) == {"1", "2"}
    assert result["pipeline_sequences_per_s"] > result["model_sequences_per_s"]
