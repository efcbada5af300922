"""Both engines provide what the loop, recovery and the jobs use, as
`engines.contract` names it."""

import ast
import inspect
import pathlib
import typing

import pytest

from tests.conftest import requires
from trainers.bert.engines import contract
from trainers.bert.engines.tf_engine.engine import TFEngine

ROOT = pathlib.Path(__file__).parents[4] / "trainers" / "bert"
# Where engines are used rather than made.
USERS = ["run", "train.py", "finetune/train.py"]


def _members(protocol):
    """(methods and properties, data attributes) a protocol names."""
    methods, data = set(), set()
    for klass in protocol.__mro__:
        if klass in (typing.Protocol, typing.Generic, object):
            continue
        data |= set(getattr(klass, "__annotations__", {}))
        methods |= {
            name
            for name, value in vars(klass).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))
        }
    return methods, data


def _assigned_in(klass):
    """Names assigned as `self.name = ...` in the class's methods, or on the class."""
    tree = ast.parse(inspect.getsource(inspect.getmodule(klass)))
    (node,) = [
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == klass.__name__
    ]
    names = set()
    for sub in ast.walk(node):
        targets = sub.targets if isinstance(sub, ast.Assign) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and getattr(leaf.value, "id", None) == "self":
                    names.add(leaf.attr)
                elif isinstance(leaf, ast.Name) and sub in node.body:
                    names.add(leaf.id)
    return names


def _check(klass, protocol):
    methods, data = _members(protocol)
    for name in sorted(methods):
        ours = getattr(klass, name, None)
        assert ours is not None, f"{klass.__name__} lacks {name}"
        if isinstance(vars(protocol).get(name) or getattr(protocol, name), property):
            assert isinstance(inspect.getattr_static(klass, name), property), name
            continue
        expected = list(inspect.signature(getattr(protocol, name)).parameters)
        assert list(inspect.signature(ours).parameters) == expected, name
    missing = (
        data
        - _assigned_in(klass)
        - {n for n in data if isinstance(inspect.getattr_static(klass, n, None), property)}
    )
    assert not missing, f"{klass.__name__} does not set {sorted(missing)}"


def test_the_tensorflow_engine_provides_every_member_and_predicts():
    _check(TFEngine, contract.Predicts)


def test_the_jax_engine_provides_every_member_and_predicts():
    requires("jax", "jax")
    from trainers.bert.engines.jax_engine.engine import JaxEngine

    _check(JaxEngine, contract.Predicts)


def _used_members():
    """Attributes read from `engine` or `self.engine` in the modules that use one."""
    used = {}
    files = [
        p
        for u in USERS
        for p in sorted((ROOT / u).glob("*.py") if (ROOT / u).is_dir() else [ROOT / u])
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            value = node.value
            if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                owner = value.attr if value.value.id == "self" else None
            else:
                owner = getattr(value, "id", None)
            if owner in ("engine", "_engine"):
                used.setdefault(node.attr, path.relative_to(ROOT).as_posix())
    return used


def test_the_contract_names_every_member_the_loop_and_the_jobs_use():
    used = _used_members()
    assert {"train", "restore", "latest", "save", "predict"} <= set(used), used
    methods, data = _members(contract.Predicts)
    unnamed = {name: where for name, where in used.items() if name not in methods | data}
    assert not unnamed, f"used but not in engines/contract.py: {unnamed}"


@pytest.mark.parametrize("protocol", [contract.Engine, contract.Predicts])
def test_each_member_says_what_it_is(protocol):
    source = inspect.getsource(contract)
    methods, data = _members(protocol)
    for name in methods:
        assert inspect.getdoc(getattr(protocol, name)), name
    for name in data:
        line = next(line for line in source.splitlines() if line.strip().startswith(f"{name}:"))
        assert "#" in line, f"{name}: one line on what it is"
