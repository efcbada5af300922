"""The requirements setup.py declares, against what the code imports:
`pip install lamb-tf` brings what `lamb_tf` imports and nothing of the
trainer's, and the trainer's installs (the `cpu` and `gpu` extras, and
tools/install_tpu.sh with the `trainer` extra) bring what `trainers/`
imports. Read from the source (setup.py run with `setup` replaced, imports
by AST), not from the installed metadata, which is as old as the last
`pip install -e`."""

import ast
import importlib.metadata
import pathlib
import re
import runpy
import shlex
import sys

import pytest
import setuptools
from packaging.requirements import Requirement

from trainers import stack

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Keras' backends: lamb_tf imports the one Keras runs on (tf_dispatch.py,
# jax_norms.py, only on that backend), which the user installs for Keras.
KERAS_BACKENDS = {"tensorflow", "jax", "torch"}
# What the trainer needs but no module of it imports: TensorFlow (2.21 no
# longer requires it) writes tf.summary through tensorboard.
TRAINER_INDIRECT = {"tensorboard"}
# The trainer's optional parts: the JAX engine, the corpus tool.
OPTIONAL = ("jax", "corpus")
FIRST_PARTY = {"lamb_tf", "trainers"}


def _name(requirement):
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


@pytest.fixture(scope="module")
def declared():
    """setup()'s keyword arguments, from running setup.py."""
    found = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(setuptools, "setup", lambda **kwargs: found.update(kwargs))
        patch.chdir(ROOT)  # setup.py reads README.md
        runpy.run_path(str(ROOT / "setup.py"))
    return found


def _imports(folder):
    """Third-party top-level names imported anywhere in `folder`'s .py files
    (also inside functions): {name: [files]}."""
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


_DISTRIBUTIONS = importlib.metadata.packages_distributions()


def _distributions(top):
    """The distributions installing import name `top` here; any TensorFlow
    build counts as `tensorflow` (the TPU stack's is tensorflow-tpu)."""
    names = {_name(d) for d in _DISTRIBUTIONS.get(top, [top.replace("_", "-")])}
    return {"tensorflow" if n in stack.TENSORFLOW_DISTRIBUTIONS else n for n in names}


def _missing(imports, requirements):
    names = {_name(r) for r in requirements}
    names |= {"tensorflow" for n in names if n in stack.TENSORFLOW_DISTRIBUTIONS}
    return {top: files[:3] for top, files in imports.items() if not _distributions(top) & names}


def test_lamb_tf_requires_exactly_what_it_imports(declared):
    imports = _imports("lamb_tf")
    assert "keras" in imports
    required = {_name(r) for r in declared["install_requires"]}
    imported = set().union(*(_distributions(t) for t in imports if t not in KERAS_BACKENDS))
    assert required == imported, (
        f"install_requires names {sorted(required)}; lamb_tf imports {sorted(imported)} "
        f"(besides Keras' backends): {imports}"
    )


def test_the_cpu_and_gpu_extras_bring_what_the_trainer_imports(declared):
    extras = declared["extras_require"]
    imports = _imports("trainers")
    for extra in ("cpu", "gpu"):
        requirements = [*declared["install_requires"], *extras[extra]]
        requirements += [r for optional in OPTIONAL for r in extras[optional]]
        missing = _missing(imports, requirements)
        assert not missing, f"[{extra}] lacks the distributions of these imports: {missing}"
        names = {_name(r) for r in requirements}
        assert TRAINER_INDIRECT <= names and {_name(r) for r in extras["trainer"]} <= names


def test_the_tpu_install_brings_what_the_trainer_imports(declared):
    """tools/install_tpu.sh installs tensorflow-tpu, keras-hub and their
    requirements itself, then lamb-tf with the `trainer` extra, which must
    not require the `tensorflow` distribution."""
    script = (ROOT / "tools" / "install_tpu.sh").read_text()
    installed, editable = [], []
    for line in script.splitlines():
        if line.startswith('"${pip[@]}"'):
            words = shlex.split(line)[1:]
            editable += [w for w in words if "$root" in w]
            installed += [w for w in words if not w.startswith("-") and "$" not in w]
    assert editable == ["$root[trainer${extras:+,$extras}]"]
    trainer = declared["extras_require"]["trainer"]
    assert not {_name(r) for r in trainer} & {"tensorflow", "tensorflow-text", "keras-hub"}
    requirements = [*declared["install_requires"], *trainer, *installed]
    requirements += [r for optional in OPTIONAL for r in declared["extras_require"][optional]]
    missing = _missing(_imports("trainers"), requirements)
    assert not missing, f"the TPU install lacks the distributions of these imports: {missing}"
    assert TRAINER_INDIRECT <= {_name(r) for r in trainer}


def test_the_training_commands_check_the_packages_of_their_install(declared):
    """`stack.check_trainer` names, before anything is imported, each
    package of the `trainer` extra and keras-hub (in `cpu` and `gpu`)."""
    extras = declared["extras_require"]
    checked = {_name(name) for name in stack.TRAINER_MODULES.values()}
    assert checked == {_name(r) for r in extras["trainer"]} | {"keras-hub"}
    for module, name in stack.TRAINER_MODULES.items():
        assert name in _distributions(module), (module, name)
