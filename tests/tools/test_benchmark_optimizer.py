import json

from tests.tools.run import run_tool


def test_benchmark_writes_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    stdout = run_tool(
        "tools/benchmark_optimizer.py",
        "--models=tiny",
        "--warmup=1",
        "--repeats=1",
        "--memory",
        f"--json_out={out}",
    )
    assert "| lamb_tf.LAMB | yes |" in stdout
    result = json.loads(out.read_text())["results"][0]
    assert result["model"] == "tiny" and result["variables"] == 5 + 2 * 16 + 9
    rows = {(r["optimizer"], r["xla"]): r for r in result["rows"]}
    assert len(rows) == 8
    for row in rows.values():
        assert row["step_ms"] > 0 and row["bandwidth_fraction"] > 0
        assert row["peak_extra_model_sizes"] is not None
    assert rows[("keras.AdamW", True)]["vs_adamw"] == 1.0
    assert rows[("keras.Lamb", False)]["vs_keras_lamb"] == 1.0
