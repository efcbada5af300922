"""The README and the pages under docs/: their commands name scripts, configs
and flags that exist, their links lead somewhere, and the README stays a short
front door whose sections come in the order a first-time user needs them."""

import functools
import re
import shlex
import subprocess
import sys

import gin
import pytest

from tests.scripts import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Every page, by its path from the repository's root.
PAGES = {"README.md": README} | {
    path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in DOCS
}
# Written by tools/batch_scaling_study.py (its results.md), not by hand.
GENERATED = {"docs/batch_scaling_study.md"}


def _commands():
    """Every `python tools/X.py ...` or `python -m trainers.bert.X[.Y] ...` on
    any page, continuation lines joined, placeholders (`[...]`) left out, each
    with the first page that gives it."""
    commands = {}
    for page, text in PAGES.items():
        found = re.findall(
            r"python (tools/\w+\.py|-m trainers\.bert(?:\.\w+)+)([^\n`']*(?:'[^'\n]*'[^\n`']*)*)",
            text.replace("\\\n", " "),
        )
        for script, rest in found:
            if "[" in rest:  # the synopsis line, not a command
                continue
            args = tuple(shlex.split(rest.split("&&")[0]))
            commands.setdefault((script, args), page)
    return [(page, script, list(args)) for (script, args), page in commands.items()]


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


def test_the_pages_have_commands_for_every_tool():
    scripts = {script for _, script, _ in COMMANDS}
    assert {"tools/quickstart.py", "tools/create_pretraining_data.py"} <= scripts
    assert {"-m trainers.bert.main", "-m trainers.bert.finetune.main"} <= scripts
    assert {"-m trainers.bert.finetune.squad_eval", "tools/finetune_baseline.py"} <= scripts
    assert len(COMMANDS) >= 12


@pytest.mark.parametrize(
    "page, script, args",
    COMMANDS,
    ids=[f"{page}:{script.removeprefix('-m ')}" for page, script, _ in COMMANDS],
)
def test_command_names_existing_script_files_and_flags(page, script, args):
    if script.endswith(".py"):
        assert (ROOT / script).exists(), f"{page}: {script}"
    flags = [arg[2:].partition("=")[::2] for arg in args if arg.startswith("--")]
    if not flags:
        return
    help_text = _help(script)
    for name, _ in flags:
        assert re.search(rf"--(\[no\])?{name}\b", help_text), f"{page}: {script}: no flag --{name}"
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
        "Results",
        "Documentation",
    ]


def test_the_readme_is_a_front_door():
    lines = README.count("\n")
    assert lines <= 300, f"README.md has {lines} lines: move the detail to a page under docs/"


def test_every_page_under_docs_is_linked_from_the_readme():
    unlinked = [page for page in PAGES if page != "README.md" and f"({page})" not in README]
    assert not unlinked, unlinked


@pytest.mark.parametrize("page", sorted(set(PAGES) - {"README.md"} - GENERATED))
def test_every_page_opens_with_its_title_and_a_way_back(page):
    title, blank, back = PAGES[page].split("\n")[:3]
    assert title.startswith("# ") and not blank, page
    assert "(../README.md)" in back, page


def _links(text):
    """The targets of the page's Markdown links and images, code left out."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # fenced code
    text = re.sub(r"^(?: {4}|\t).*$", "", text, flags=re.M)  # indented code
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code (a link's text may be code)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _anchors(text):
    """The anchors GitHub gives the page's headings, and its explicit ids."""
    slugs = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.M)
    }
    return slugs | set(re.findall(r'<a id="([^"]+)"', text))


@pytest.mark.parametrize("page", sorted(PAGES))
def test_relative_links_lead_to_files_and_headings_that_exist(page):
    here = (ROOT / page).parent
    broken = []
    for link in _links(PAGES[page]):
        if re.match(r"https?://", link):
            continue
        path, _, anchor = link.partition("#")
        target = (here / path).resolve() if path else ROOT / page
        if not target.exists():
            broken.append(link)
        elif anchor and target.suffix == ".md":
            if anchor not in _anchors(target.read_text(encoding="utf-8")):
                broken.append(link)
    assert not broken, f"{page}: {broken}"


def test_notebooks_are_linked():
    for name in ("bert_pretraining_tpu.ipynb", "lamb_with_keras.ipynb"):
        assert f"(notebooks/{name})" in README
