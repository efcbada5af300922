"""The Colab notebooks run top to bottom on CPU, with the parameter cell's
values shrunk, and are committed without outputs."""

import json
import re

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernel
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.scripts import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPOSITORY = re.search(r'url="([^"]+)"', (ROOT / "setup.py").read_text()).group(1)


def _parameter_cell(notebook):
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged 'parameters'"
    return tagged[0]


def _execute(name, tmp_path, again=None, **overrides):
    """Runs the notebook in a kernel of this interpreter, in `tmp_path`, with
    `overrides` assigned right after the parameter cell (as papermill does),
    and the cell holding `again` run a second time right after itself."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assignments = "\n".join(f"{key} = {value!r}" for key, value in overrides.items())
    if again:
        (index,) = [i for i, c in enumerate(notebook.cells) if again in c.source]
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(notebook.cells[index].source))
    notebook.cells.insert(_parameter_cell(notebook) + 1, nbformat.v4.new_code_cell(assignments))
    # A kernel spec naming sys.executable: a "python3" kernel found elsewhere
    # on the machine could be another Python without this project.
    install_kernel(kernel_name="lamb_tf_test", prefix=str(tmp_path / "kernel"))
    specs = KernelSpecManager(
        kernel_dirs=[str(tmp_path / "kernel" / "share" / "jupyter" / "kernels")]
    )
    kernel = KernelManager(kernel_name="lamb_tf_test", kernel_spec_manager=specs)
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(
        notebook, km=kernel, timeout=900, resources={"metadata": {"path": str(work)}}
    )
    client.execute(env={"PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    # TensorFlow's native start-up lines stay out of the outputs.
    assert "cuInit" not in _text(notebook) and "InitializeLog" not in _text(notebook)
    return notebook


def _text(notebook):
    return "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def _images(notebook):
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


@pytest.mark.slow
def test_bert_pretraining_notebook_runs_on_cpu(tmp_path):
    # The pretraining cell is run twice, as in Colab after a disconnect: the
    # second time the finished run reports its figures without training.
    notebook = _execute(
        "bert_pretraining_tpu.ipynb",
        tmp_path,
        again="summary = trainer.train(",
        STEPS=(4, 2),
        DUPE_FACTOR=1,
        WORK_DIR="demo",
    )
    text = _text(notebook)
    assert "Runtime: cpu" in text and "cpu: 1 replica(s)" in text
    assert "phase 2 [" in text and "the run finished at step 6" in text
    (first, second) = re.findall(r"held-out: .*", text)
    assert first == second
    assert "cosine similarity" in text
    assert len(_images(notebook)) == 1
    assert (tmp_path / "work" / "demo" / "run" / "encoder" / "config.json").exists()


@pytest.mark.slow
def test_lamb_with_keras_notebook_runs_on_cpu(tmp_path):
    notebook = _execute("lamb_with_keras.ipynb", tmp_path, EXAMPLES=4096, EPOCHS=2)
    text = _text(notebook)
    assert "lamb_tf.LAMB" in text and "keras AdamW" in text
    assert len(_images(notebook)) == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    # Reading corrects repeated cell ids with only a warning: checked as saved.
    ids = [cell["id"] for cell in json.loads(path.read_text())["cells"]]
    assert len(set(ids)) == len(ids), "repeated cell ids"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} holds outputs: run `python tools/strip_notebooks.py`"
            )
        assert "execution" not in cell.metadata
    assert "widgets" not in notebook.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_install_name_the_repository(path):
    notebook = nbformat.read(path, as_version=4)
    owner_name = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/{path.name}"
    assert badge in notebook.cells[0].source
    assert f'REPOSITORY = "{REPOSITORY}"' in notebook.cells[_parameter_cell(notebook)].source


def _install_functions():
    """The install cell's functions, defined as the notebook defines them
    (nothing is installed: the cell that calls them is not run)."""
    notebook = nbformat.read(ROOT / "notebooks" / "bert_pretraining_tpu.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "def install_commands" in c.source)
    namespace = {"REPOSITORY": REPOSITORY}
    exec(cell.source, namespace)
    return namespace


def test_each_runtime_installs_its_own_tensorflow():
    functions = _install_functions()
    commands = functions["install_commands"]
    clone = ["git", "clone", "-q", "--depth=1", REPOSITORY, "lamb-tf"]
    # TPU: the TPU stack's script, so tensorflow-tpu is the only TensorFlow.
    assert commands("tpu") == [clone, ["bash", "lamb-tf/tools/install_tpu.sh", "plots"]]
    # GPU and CPU: pip with the pinned versions and the extra naming TensorFlow's build.
    for runtime, extras in (("gpu", "gpu,plots"), ("cpu", "cpu,plots")):
        clone_, pip = commands(runtime)
        assert clone_ == clone
        assert pip[1:] == [
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            "lamb-tf/constraints.txt",
            f"./lamb-tf[{extras}]",
        ]
    # What the commands name exists in this repository.
    assert (ROOT / "tools" / "install_tpu.sh").exists() and (ROOT / "constraints.txt").exists()
    setup = (ROOT / "setup.py").read_text()
    assert '"gpu": ["tensorflow[and-cuda]' in setup and '"cpu": ["tensorflow>=' in setup
    assert '"plots":' in setup
    assert functions["find_runtime"]() == "cpu"  # this machine: no TPU chips, no GPU


def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["bert_pretraining_tpu.ipynb", "lamb_with_keras.ipynb"]
