"""The type stubs (python/kinflow/__init__.pyi) against the package itself: every public name,
method, attribute and parameter (with its default) appears in both, and the installed
package ships the stubs and the PEP 561 marker."""

import ast
import importlib.resources
import inspect
import pathlib

import numpy as np

import kinflow

STUB = pathlib.Path(kinflow.__file__).with_name("__init__.pyi")


def _stub():
    tree = ast.parse(STUB.read_text())
    functions, classes, names = {}, {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            members = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members[item.name] = item
                elif isinstance(item, ast.AnnAssign):
                    members[item.target.id] = item
            classes[node.name] = members
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return functions, classes, names


def _value(node):
    """A default as written in the stubs (a literal, or arithmetic on literals such as 1 / 3)."""
    return eval(compile(ast.Expression(body=node), str(STUB), "eval"), {})  # our own file


def _parameters(fn):
    """[(name, default or None)] of a stub function, without self."""
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + [_value(d) for d in a.defaults]
    out = [(p.arg, d) for p, d in zip(positional, defaults)]
    out += [(p.arg, None if d is None else _value(d)) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append(("**" + a.kwarg.arg, None))
    return [(n, d) for n, d in out if n != "self"]


def _signature(obj):
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            out.append(("**" + p.name, None))
        elif p.name != "self":
            out.append((p.name, None if p.default is p.empty else p.default))
    return out


def _pybind_init(cls):
    """[(name, default)] from a pybind11 constructor's docstring signature."""
    line = cls.__init__.__doc__.strip().splitlines()[0]
    fn = ast.parse("def " + line.replace("kinflow._kinflow.", "").replace(": handle", "") + ": ...").body[0]
    return _parameters(fn)


def test_every_public_name_is_in_the_stubs():
    functions, classes, names = _stub()
    for name in kinflow.__all__:
        assert name in functions or name in classes or name in names, f"{name} is not in __init__.pyi"
    assert "datasets" in names and "__version__" in names and "build_info" in names


def test_function_parameters_and_defaults_match():
    functions, _, _ = _stub()
    for name in kinflow.__all__:
        obj = getattr(kinflow, name)
        if inspect.isfunction(obj):
            assert _parameters(functions[name]) == _signature(obj), name
    assert _parameters(functions["log_likelihood"]) == _signature(kinflow.log_likelihood)


def test_classes_match():
    _, classes, _ = _stub()
    for name in kinflow.__all__:
        cls = getattr(kinflow, name)
        if not inspect.isclass(cls):
            continue
        stub = classes[name]
        public = {m for m in dir(cls) if not m.startswith("_")}
        assert public <= set(stub), f"{name}: {sorted(public - set(stub))} missing from the stubs"
        init = _pybind_init(cls) if "pybind11" in type(cls).__module__ or cls.__module__ == "kinflow._kinflow" \
            else _signature(cls.__init__)
        assert _parameters(stub["__init__"]) == init, name
    # Attributes set per instance.
    Y = np.asarray(kinflow.datasets.make("moons", 40))
    r = kinflow.sample(kinflow.EmpiricalField(Y), Y[:3], steps=2)
    m = kinflow.memorization(Y[:5], Y)
    f = kinflow.torch_field(lambda t, x: x) if _has_torch() else None
    for obj, name in [(r, "SampleResult"), (m, "MemorizationResult")] + ([(f, "TorchField")] if f else []):
        attributes = {k for k in dir(obj) if not k.startswith("_")}
        annotated = {k for k, v in classes[name].items() if isinstance(v, ast.AnnAssign)}
        assert attributes - {"__init__"} <= set(classes[name]), f"{name}: {sorted(attributes - set(classes[name]))}"
        assert annotated <= attributes, f"{name}: the stubs name {sorted(annotated - attributes)}, which it lacks"
    datasets = {k for k in dir(kinflow.datasets) if not k.startswith("_")}
    assert datasets <= set(classes["_Datasets"])
    for method in ("make", "fashion_mnist"):
        assert _parameters(classes["_Datasets"][method]) == _signature(getattr(kinflow.datasets, method))


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_installed_package_ships_the_stubs():
    files = importlib.resources.files("kinflow")
    assert (files / "__init__.pyi").is_file()
    assert (files / "py.typed").is_file()
