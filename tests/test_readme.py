"""The README's commands name scripts, configs and flags that exist, and its
sections come in the order a first-time user needs them."""

import functools
import re
import shlex
import subprocess
import sys

import gin
import pytest

from tests.scripts import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands():
    """Every `python tools/X.py ...` or `python -m trainers.bert.X[.Y] ...` in
    the README, continuation lines joined, placeholders (`[...]`) left out."""
    text = README.replace("\\\n", " ")
    found = re.findall(
        r"python (tools/\w+\.py|-m trainers\.bert(?:\.\w+)+)([^\n`']*(?:'[^'\n]*'[^\n`']*)*)",
        text,
    )
    commands = []
    for script, rest in found:
        if "[" in rest:  # the synopsis line, not a command
            continue
        command = (script, shlex.split(rest.split("&&")[0]))
        if command not in commands:
            commands.append(command)
    return commands


COMMANDS = _commands()


@functools.cache
def _help(script):
    """The script's help text: absl's --helpfull lists every module's flags
    (and exits 1), argparse's --help its own."""
    args = [script] if script.endswith(".py") else ["-m", script.removeprefix("-m ")]
    for flag in ("--helpfull", "--help"):
        proc = subprocess.run(
            [sys.executable, *args, flag], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if "unrecognized arguments" not in proc.stderr:
            return proc.stdout + proc.stderr
    raise AssertionError(f"{script} prints no help")


def test_the_readme_has_commands_for_every_tool():
    scripts = {script for script, _ in COMMANDS}
    assert {"tools/quickstart.py", "tools/create_pretraining_data.py"} <= scripts
    assert {"-m trainers.bert.main", "-m trainers.bert.finetune.main"} <= scripts
    assert {"-m trainers.bert.finetune.squad_eval", "tools/finetune_baseline.py"} <= scripts
    assert len(COMMANDS) >= 12


@pytest.mark.parametrize("script, args", COMMANDS, ids=lambda v: v if isinstance(v, str) else "")
def test_command_names_existing_script_files_and_flags(script, args):
    if script.endswith(".py"):
        assert (ROOT / script).exists(), script
    flags = [arg[2:].partition("=")[::2] for arg in args if arg.startswith("--")]
    if not flags:
        return
    help_text = _help(script)
    for name, _ in flags:
        assert re.search(rf"--(\[no\])?{name}\b", help_text), f"{script}: no flag --{name}"
    gin_files = [value for name, value in flags if name == "gin_file"]
    if gin_files:
        from trainers.bert import train  # noqa: F401  (registers the configurables)
        from trainers.bert.finetune import train as finetune  # noqa: F401

        bindings = [value for name, value in flags if name == "gin_param"]
        try:
            gin.parse_config_files_and_bindings([ROOT / f for f in gin_files], bindings)
        finally:
            gin.clear_config()


def test_sections_come_in_the_order_a_new_user_needs():
    sections = re.findall(r"^## (.+)$", README, re.M)
    assert sections == [
        "Set up",
        "Using LAMB in your model",
        "Running the trainer",
        "TPU VMs and pods",
        "The JAX engine",
        "Creating pretraining data",
        "Fine-tuning",
        "Results",
        "Migrating",
        "Design",
        "Contributing",
    ]


def test_notebooks_are_linked():
    for name in ("bert_pretraining_tpu.ipynb", "lamb_with_keras.ipynb"):
        assert f"(notebooks/{name})" in README
