import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.scripts import run_tool


def test_outputs_are_removed_and_source_kept(tmp_path):
    run_metadata = {"execution": {"iopub.status.busy": "2026-11-24T10:00:00.000Z"}}
    cell = new_code_cell("print(1)", execution_count=3, metadata=run_metadata)
    cell.outputs = [new_output("stream", name="stdout", text="1\n")]
    notebook = new_notebook(cells=[new_markdown_cell("# title"), cell])
    notebook.metadata["widgets"] = {"state": {}}
    path = tmp_path / "run.ipynb"
    nbformat.write(notebook, path)

    assert "stripped" in run_tool("tools/strip_notebooks.py", str(path))

    stripped = nbformat.read(path, as_version=4)
    code = stripped.cells[1]
    assert code.outputs == [] and code.execution_count is None and code.metadata == {}
    assert [c.source for c in stripped.cells] == ["# title", "print(1)"]
    assert "widgets" not in stripped.metadata
    assert run_tool("tools/strip_notebooks.py", str(path)) == ""  # nothing left to strip
