import json

import pytest

from tests.scripts import run_tool


@pytest.mark.slow
def test_benchmark_data_reports_every_rate(tmp_path):
    out = tmp_path / "data.json"
    stdout = run_tool(
        "tools/benchmark_data.py",
        "--megabytes=0.5",
        "--batch_size=8",
        "--checksum_megabytes=5",
        f"--json_out={out}",
    )
    for row in ("creation, 2 processes", "input pipeline, length 128", "small BERT training step"):
        assert f"| {row}" in stdout, row
    assert "validate() with SHA-256 checks" in stdout
    result = json.loads(out.read_text())
    assert result["raw_mb_per_s"] > 0 and result["model_sequences_per_s"] > 0
    assert set(result["creation_mb_per_s"]) == {"1", "2"}
    assert min(result["creation_mb_per_s"].values()) > 0
    assert result["pipeline_sequences_per_s"] > 0
    assert "cached" in result["validate_mb_per_s"]
    assert min(result["validate_mb_per_s"].values()) > 0


def test_checksum_only_measures_validate(tmp_path):
    out = tmp_path / "checksum.json"
    stdout = run_tool(
        "tools/benchmark_data.py", "--checksum_only", "--checksum_megabytes=10", f"--json_out={out}"
    )
    assert "1 GB of shards, cached (extrapolated)" in stdout
    result = json.loads(out.read_text())
    assert 5 < result["checksum_megabytes"] < 20
    rates = result["validate_mb_per_s"]
    assert {"cached", "size_only"} <= set(rates) and min(rates.values()) > 0
    assert result["validate_seconds_per_gb"]["cached"] == 1000 / rates["cached"]
