"""The package as installed: typing files, stubs and docstrings on every public name."""

from __future__ import annotations

import ast
import importlib.resources
import inspect
import pathlib

import ringfence
import ringfence._native
import ringfence.asgi
import ringfence.litellm
import ringfence.prometheus
import ringfence.sim


def test_typing_files_are_installed():
    files = importlib.resources.files("ringfence")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


def public(obj):
    return [n for n in dir(obj) if not n.startswith("_")]


def test_every_public_name_has_a_docstring():
    missing = []
    for module in (ringfence, ringfence.asgi, ringfence.sim, ringfence.litellm, ringfence.prometheus):
        assert module.__doc__, module
        for name in getattr(module, "__all__", public(module)):
            obj = getattr(module, name)
            if isinstance(obj, (int, float, str, tuple)) or name.isupper():
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                for attr in public(obj):
                    member = inspect.getattr_static(obj, attr)
                    if getattr(member, "__objclass__", obj) in (object, BaseException, Exception):
                        continue
                    if attr in vars(BaseException) or attr in ("args", "with_traceback", "add_note"):
                        continue
                    if not inspect.getdoc(getattr(obj, attr)):
                        missing.append(f"{module.__name__}.{name}.{attr}")
    assert not missing, missing


def test_the_stub_names_what_the_module_has():
    stub = pathlib.Path(str(importlib.resources.files("ringfence").joinpath("_native.pyi")))
    tree = ast.parse(stub.read_text())
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
            if isinstance(node, ast.ClassDef):
                runtime = getattr(ringfence._native, node.name)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                        assert hasattr(runtime, item.name), f"{node.name}.{item.name}"
                for attr in public(runtime):
                    names = {i.name for i in node.body if isinstance(i, ast.FunctionDef)}
                    if runtime.__module__ == "ringfence" and not issubclass(runtime, BaseException):
                        assert attr in names, f"{node.name}.{attr} is not in the stub"
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    runtime_names = {n for n in dir(ringfence._native) if not n.startswith("__") or n == "__version__"}
    runtime_names.discard("VerdictIter")
    assert runtime_names <= stubbed | {"__version__"}, runtime_names - stubbed


def test_version():
    assert ringfence.__version__.count(".") == 2
