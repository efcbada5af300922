"""The Colab notebooks run top to bottom on CPU, with the parameter cell's
values shrunk (the BERT notebook on each engine), and are committed without
outputs; the BERT notebook's install and connect cells are tested against a
fake TPU runtime."""

import ast
import json
import re
import shutil

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernel
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.scripts import ROOT
from trainers import stack

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
    # ENGINE "auto" on a CPU runtime: TensorFlow. The pretraining cell is run
    # twice, as in Colab after a disconnect: the second time the finished run
    # reports its figures without training.
    notebook = _execute(
        "bert_pretraining_tpu.ipynb",
        tmp_path,
        again="summary = trainer.train(",
        STEPS=(4, 2),
        DUPE_FACTOR=1,
        WORK_DIR="demo",
    )
    text = _text(notebook)
    assert "Runtime: cpu, engine: tf" in text and "engine tf: 1 replica(s)" in text
    assert "phase 2 [" in text and "the run finished at step 6" in text
    (first, second) = re.findall(r"held-out: .*", text)
    assert first == second
    assert "cosine similarity" in text
    assert len(_images(notebook)) == 1
    assert (tmp_path / "work" / "demo" / "run" / "encoder" / "config.json").exists()


@pytest.mark.slow
def test_bert_pretraining_notebook_runs_on_the_jax_engine(tmp_path):
    # ENGINE = "jax" on a CPU runtime, at the smallest sizes that still show
    # both phases: the same outputs from the JAX engine (orbax checkpoints).
    notebook = _execute(
        "bert_pretraining_tpu.ipynb",
        tmp_path,
        ENGINE="jax",
        STEPS=(2, 1),
        DUPE_FACTOR=1,
        WORK_DIR="demo",
    )
    text = _text(notebook)
    assert "Runtime: cpu, engine: jax" in text
    assert re.search(r"engine jax: \d+ CPU device\(s\)", text)
    assert "(JAX)" in text  # the run's headline names the engine's devices
    assert "phase 1 [" in text and "phase 2 [" in text
    assert len(re.findall(r"held-out: \{'loss': .*", text)) == 1
    assert "cosine similarity" in text and "embeddings: (3, " in text
    assert len(_images(notebook)) == 1
    run = tmp_path / "work" / "demo" / "run"
    assert (run / "encoder" / "config.json").exists()
    assert (run / "checkpoints" / "3").is_dir()  # orbax's: a folder per step


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


def _bert_cell(marker):
    notebook = nbformat.read(ROOT / "notebooks" / "bert_pretraining_tpu.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if marker in c.source]
    return cell.source


def _install_functions():
    """The install cell's functions, defined as the notebook defines them,
    and the connect cell's (its imports and functions only): nothing is
    installed or connected, the cells that call them are not run."""
    namespace = {"REPOSITORY": REPOSITORY, "WORK_DIR": "demo"}
    exec(_bert_cell("def install_commands"), namespace)
    tree = ast.parse(_bert_cell("def connect("))
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.Import)]
    exec(compile(tree, "connect cell", "exec"), namespace)
    return namespace


CLONE = ["git", "clone", "-q", "--depth=1", REPOSITORY, "lamb-tf"]
PIP = ["-m", "pip", "install", "-q", "-c"]


def test_each_runtime_installs_its_own_tensorflow_for_the_tf_engine():
    commands = _install_functions()["install_commands"]
    # TPU: the TPU stack's script, so tensorflow-tpu is the only TensorFlow.
    assert commands("tpu", "tf") == [CLONE, ["bash", "lamb-tf/tools/install_tpu.sh", "plots"]]
    # GPU and CPU: pip with the pinned versions and the extra naming TensorFlow's build.
    for runtime, extras in (("gpu", "gpu,plots"), ("cpu", "cpu,plots")):
        clone, pip = commands(runtime, "tf")
        assert clone == CLONE
        assert pip[1:] == [*PIP, "lamb-tf/constraints.txt", f"./lamb-tf[{extras}]"]
    # What the commands name exists in this repository.
    assert (ROOT / "tools" / "install_tpu.sh").exists() and (ROOT / "constraints.txt").exists()
    setup = (ROOT / "setup.py").read_text()
    assert '"gpu": ["tensorflow[and-cuda]' in setup and '"cpu": ["tensorflow>=' in setup
    assert '"plots":' in setup


def test_the_jax_engine_installs_beside_the_runtimes_own_jax_and_libtpu(tmp_path):
    functions = _install_functions()
    # A runtime's packages, as installed_versions() names them: its JAX, a
    # libtpu, a GPU plugin and others.
    installed = {
        "jax": "0.11.3",
        "jaxlib": "0.11.3",
        "libtpu": "0.0.41",
        "jax-cuda12-plugin": "0.11.3",
        "numpy": "2.4.6",
        "requests": "2.32.0",
    }
    for runtime in ("tpu", "gpu", "cpu"):
        clone, write, pip = functions["install_commands"](runtime, "jax", installed=installed)
        assert clone == CLONE
        assert pip[1:] == [*PIP, "lamb-tf/runtime-constraints.txt", "./lamb-tf[cpu,jax,plots]"]
        # Nothing of JAX is named to install: only lamb-tf and its extras.
        assert not any("jax[" in arg or "libtpu" in arg for arg in clone + pip)
        assert write.args[:2] == ("lamb-tf/constraints.txt", "lamb-tf/runtime-constraints.txt")
    # The file pip reads: the repository's constraints with the runtime's JAX pinned.
    (tmp_path / "lamb-tf").mkdir()
    shutil.copy(ROOT / "constraints.txt", tmp_path / "lamb-tf")
    write.func(*(str(tmp_path / path) for path in write.args[:2]), *write.args[2:])
    written = (tmp_path / "lamb-tf" / "runtime-constraints.txt").read_text().splitlines()
    ours = (ROOT / "constraints.txt").read_text().splitlines()
    pins = ["jax==0.11.3", "jaxlib==0.11.3", "libtpu==0.0.41", "jax-cuda12-plugin==0.11.3"]
    assert sorted(written) == sorted([line for line in ours if not line.startswith("jax")] + pins)
    assert "jax==0.10.2" in ours and "numpy==2.4.6" in written
    # By default the packages of this Python: its CPU JAX is kept as installed.
    _, write, _ = functions["install_commands"]("cpu", "jax")
    pins = write.args[2]
    assert pins["jax"] == stack.version("jax") and pins["jaxlib"] == stack.version("jaxlib")
    assert all(functions["JAX_PACKAGES"].fullmatch(name) for name in pins)
    setup = (ROOT / "setup.py").read_text()
    assert '"jax": ["jax>=' in setup and "orbax-checkpoint" in setup


def test_the_engine_follows_the_runtime(monkeypatch):
    functions = _install_functions()
    choose, needs_install = functions["choose_engine"], functions["needs_install"]
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    assert [choose("auto", runtime, {}) for runtime in ("tpu", "gpu", "cpu")] == ["jax", "tf", "tf"]
    assert choose("tf", "tpu", {}) == "tf" and choose("jax", "cpu", {}) == "jax"
    with pytest.raises(ValueError, match="choose one of 'auto', 'jax', 'tf'"):
        choose("torch", "tpu", {})
    # After ENGINE = "tf", TensorFlow's libtpu replaced the runtime's.
    with pytest.raises(RuntimeError, match="start a fresh runtime"):
        choose("jax", "tpu", {"tensorflow-tpu": "2.20.0"})
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")  # a TPU node: TensorFlow reaches it
    assert choose("auto", "tpu", {}) == "tf"
    # An install for another engine is made when ENGINE changes.
    jax_stack = dict.fromkeys(["lamb-tf", "tensorflow", "keras-hub", "jax", "orbax-checkpoint"])
    assert not needs_install("tpu", "jax", jax_stack)
    assert needs_install("tpu", "tf", jax_stack) and needs_install("tpu", "jax", {})
    assert not needs_install("cpu", "tf", dict.fromkeys(["lamb-tf", "tensorflow"]))
    assert needs_install("cpu", "jax", dict.fromkeys(["lamb-tf", "tensorflow"]))
    # A restart after an install that changed a package this process imported.
    changed = functions["changed_while_loaded"]
    before = {"numpy": "2.0.0", "keras": "3.15.1", "tensorflow": "2.19.0"}
    after = {"numpy": "2.4.6", "keras": "3.15.1", "tensorflow": "2.21.0"}
    assert changed(before, after) == ["numpy", "tensorflow"]  # both imported here
    assert changed(before, before) == []


def test_the_runtime_is_found_from_its_device_files(tmp_path, monkeypatch):
    find_runtime = _install_functions()["find_runtime"]
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no nvidia-smi
    assert find_runtime() == "cpu"  # this machine: no TPU chips, no GPU
    # A TPU VM's chips, as the trainer's TPU check knows them.
    for number, pattern in enumerate(stack.TPU_DEVICE_FILES):
        dev = tmp_path / f"dev{number}"
        chip = dev / pattern.removeprefix("/dev/").replace("[0-9]*", "0")
        chip.parent.mkdir(parents=True)
        assert find_runtime(str(dev)) == "cpu"
        chip.touch()
        assert find_runtime(str(dev)) == "tpu"
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "nvidia0").touch()
    assert find_runtime(str(tmp_path / "gpu")) == "gpu"


def test_a_fake_tpu_runtime_stops_with_one_message_naming_the_other_engine():
    # This process's JAX has only CPU devices and its TensorFlow no TPU
    # support: on a runtime whose device files say "tpu", each engine stops
    # with one line naming what failed and the other engine, not the CPU.
    connect = _install_functions()["connect"]
    for engine, other in (("jax", 'set ENGINE = "tf"'), ("tf", 'set ENGINE = "jax"')):
        with pytest.raises(RuntimeError) as stopped:
            connect(engine, "tpu")
        message = str(stopped.value)
        assert message.startswith(f"engine {engine} did not reach this runtime's TPU (")
        assert other in message and "\n" not in message
        assert stopped.value.__suppress_context__  # one message, not a chain
    # JAX's own words name why: here no TPU backend at all.
    with pytest.raises(RuntimeError, match=r"TPU \(.*tpu.*\): set ENGINE = \"tf\""):
        connect("jax", "tpu")
    # On a CPU runtime the JAX engine takes the CPU, and says so.
    found, strategy, line = connect("jax", "cpu")
    assert (found, strategy) == ("cpu", None) and re.match(r"engine jax: \d+ CPU device", line)


def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["bert_pretraining_tpu.ipynb", "lamb_with_keras.ipynb"]
