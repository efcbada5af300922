import json

from tests.scripts import run_tool


def test_benchmark_data_reports_every_rate(tmp_path):
    out = tmp_path / "data.json"
    stdout = run_tool(
        "tools/benchmark_data.py", "--megabytes=0.5", "--batch_size=8", f"--json_out={out}"
    )
    assert "| creation, 2 processes |" in stdout
    result = json.loads(out.read_text())
    assert result["raw_mb_per_s"] > 0 and result["model_sequences_per_s"] > 0
    assert set(result["creation_mb_per_s"]) == {"1", "2"}
    assert result["pipeline_sequences_per_s"] > result["model_sequences_per_s"]
