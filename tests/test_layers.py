"""The layers stay visible: web (Flask) and commands (click) above the core, imports pointing one
way, no module leaning on another's private names, and no import hidden inside a function
without a comment saying why.

Read from the source with `ast`, so the check costs nothing at run time and fails with the file
and line of the offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("directory", "ingest")
WEB_ONLY = ("flask", "flask_babel", "flask_wtf", "flask_limiter", "werkzeug", "jinja2", "markupsafe")
COMMANDS_ONLY = ("click",)
# Plain utilities that ship inside a web package: password hashing is core, not HTTP.
CORE_MAY_USE = ("werkzeug.security",)


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, path: Path):
    """(line, imported module, names, at module level, commented) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    top: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.add(id(node))
        elif isinstance(node, ast.Try):
            top.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    # Imports only type checkers see never run: they name a type, they do not make a dependency.
    typing_only = {id(n) for node in tree.body if _is_type_checking(node)
                   for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in typing_only:
            continue
        here, above = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
        commented = "#" in here or above.strip().startswith("#")
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, [], id(node) in top, commented
        else:
            target = _resolve(module, path, node)
            names = [a.name for a in node.names]
            yield node.lineno, target, names, id(node) in top, commented
            for name in names:  # `from . import x` imports the module x
                if f"{target}.{name}" in MODULES:
                    yield node.lineno, f"{target}.{name}", [], id(node) in top, commented


def _layer(module: str) -> str:
    if module.startswith("directory.web"):
        return "web"
    if module.startswith("directory.commands"):
        return "commands"
    if module == "app":
        return "app"
    return module.split(".")[0]  # directory (the core) or ingest


def test_flask_only_in_the_web_layer_and_click_only_in_commands():
    problems = []
    for module, path in MODULES.items():
        for line, target, _names, _top, _c in _imports(module, path):
            root = target.split(".")[0]
            if root in WEB_ONLY and _layer(module) not in ("web", "app") and target not in CORE_MAY_USE:
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target} outside directory/web")
            if root in COMMANDS_ONLY and _layer(module) not in ("commands", "app"):
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target} outside directory/commands")
    assert problems == []


def test_imports_point_one_way():
    """app -> web / commands -> core (directory, ingest); the core never imports web or commands,
    directory's core never imports ingest, and web never imports commands (or the reverse)."""
    allowed = {
        "app": {"app", "web", "commands", "directory", "ingest"},
        "commands": {"commands", "directory", "ingest"},
        "web": {"web", "directory"},
        "ingest": {"ingest", "directory"},
        "directory": {"directory"},
    }
    problems = []
    for module, path in MODULES.items():
        for line, target, _names, _top, _c in _imports(module, path):
            if target.split(".")[0] not in ("app", *PACKAGES):
                continue
            if _layer(target) not in allowed[_layer(module)]:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {_layer(module)} imports {target}")
    assert problems == []


def test_no_import_circles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for _line, target, _names, top, _c in _imports(module, path):
            if top and target in MODULES and target != module:
                graph[module].add(target)
    # A package's __init__ importing its own submodules is how packages work, not a circle.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_private_names_across_modules():
    problems = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported_modules: set[str] = set()
        for line, target, names, _top, _c in _imports(module, path):
            if target.split(".")[0] not in ("app", *PACKAGES):
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__") and f"{target}.{name}" not in MODULES:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    imported_modules.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {node.value.id}.{node.attr}")
    assert problems == []


def test_imports_inside_functions_say_why():
    problems = []
    for module, path in MODULES.items():
        for line, target, _names, top, commented in _imports(module, path):
            if not top and not commented:
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target} inside a function without a comment")
    assert problems == []
