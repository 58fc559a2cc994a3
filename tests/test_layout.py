"""The package's layout: no import inside a function hides a cycle, no module grows past ~400 lines.

An import written inside a function can dodge an import cycle that the module-level
imports would close. Each one found under ``sngan_gluon/`` is checked against the
graph of module-level imports: the module it imports must not reach back to the module
it sits in (the CLIs import lazily only to keep ``--help`` and optional extras light).
"""
import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "sngan_gluon")
MAX_LINES = 420


def _modules(package):
    """{dotted name: path} of every module of the package in folder ``package``."""
    found = {}
    root = os.path.dirname(package)
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                found[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return found


def _imported(modules, module, node):
    """The modules of ``modules`` that an import statement ``node`` of ``module`` loads."""
    if isinstance(node, ast.ImportFrom):
        package = module if modules[module].endswith("__init__.py") else module.rsplit(".", 1)[0]
        for _ in range(max(node.level - 1, 0)):
            package = package.rsplit(".", 1)[0]
        base = node.module if not node.level else ".".join(filter(None, [package, node.module]))
        names = [base] + ["%s.%s" % (base, alias.name) for alias in node.names]
    else:
        names = [alias.name for alias in node.names]
    loaded = set()
    for name in names:  # importing a.b.c runs a, a.b and a.b.c
        parts = name.split(".")
        loaded.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name for name in loaded if name in modules}


def _imports(modules):
    """({module: modules its top-level imports load}, [(module, line, imported module)]
    for every import inside a function)."""
    top, inner = {}, []
    for module, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        top[module] = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                top[module] |= _imported(modules, module, node)
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        inner += [(module, node.lineno, target)
                                  for target in sorted(_imported(modules, module, node))]
    return top, inner


def _reachable(top, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in top[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _cycles(modules):
    """The imports inside functions whose module is imported back by what they import."""
    top, inner = _imports(modules)
    return ["%s line %d imports %s, which imports it back" % (module, line, target)
            for module, line, target in inner
            if module != target and module in _reachable(top, target)
            and not module.startswith(target + ".")]


def test_the_walk_of_imports_sees_the_package():
    modules = _modules(PACKAGE)
    top, inner = _imports(modules)
    assert len(modules) > 40 and "sngan_gluon.nn.spectral_norm" in modules
    assert "sngan_gluon.nn.spectral_norm" in _reachable(top, "sngan_gluon.trainer")
    assert ("sngan_gluon.cli.export", "sngan_gluon.onnx_export") in {(m, t) for m, _, t in inner}


def test_no_import_inside_a_function_dodges_a_cycle():
    assert _cycles(_modules(PACKAGE)) == []


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    """A two-module package whose ``b`` imports ``a`` inside a function, ``a`` importing ``b``."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import x\n")
    assert _cycles(_modules(str(package))) == ["pkg.b line 2 imports pkg.a, which imports it back"]
    (package / "a.py").write_text("x = 1\n")
    assert _cycles(_modules(str(package))) == []


def test_no_module_is_over_about_400_lines():
    lengths = {}
    for module, path in _modules(PACKAGE).items():
        with open(path) as f:
            lengths[module] = len(f.read().splitlines())
    assert max(lengths.values()) > 300  # the count sees the package's modules
    assert {m: n for m, n in lengths.items() if n > MAX_LINES} == {}
