"""The import graph between hub modules: no circle, a floor that imports only itself, imports at the top.

Read from the source with :mod:`ast`, so nothing of the hub is run. ``python -m tests.test_imports``
prints the graph.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"
FLOOR = "hub.core"

#: Third-party libraries that are slow to import or touch hardware when imported; the only
#: imports allowed inside functions, each with a comment saying why.
HEAVY = {"vosk", "pyaudio", "gpiozero", "gunicorn", "playwright", "fontTools", "webrtcvad", "khmercut", "segno",
         "babel"}

TABLE_ENTRY = re.compile(r"^(hub(?:\.\w+)+):\w+$")

#: The longest a module may grow.
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HUB.rglob("*.py"))}


def _imported(node: ast.AST, here: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The hub modules one import statement names."""
    names = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            names.append(alias.name)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = here.split(".")
            if not is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names.append(prefix)
        for alias in node.names:
            names.append(f"{prefix}.{alias.name}")
    out = []
    for name in names:
        if name == "hub" or not name.startswith("hub."):
            continue
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != "hub" and name != here:
            out.append(name)
    return out


def graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """(module -> hub modules it imports, imports of hub modules found inside functions).

    A ``"hub.part.module:name"`` string (the doctor's checks, the speech engines) is a
    table entry imported by name, and counts as an import of that module.
    """
    known = modules()
    edges: dict[str, set[str]] = {}
    nested: list[tuple[str, int, str]] = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges[name] = set()
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                target = TABLE_ENTRY.match(node.value)
                if target and target.group(1) in known and target.group(1) != name:
                    edges[name].add(target.group(1))
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = _imported(node, name, path.name == "__init__.py", known)
            edges[name].update(targets)
            if targets and id(node) not in top:
                nested.append((name, node.lineno, targets[0]))
    return edges, nested


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(1000, 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_hub():
    edges, _ = graph()
    assert circles(edges) == []


def test_the_floor_imports_nothing_above_it():
    edges, _ = graph()
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in edges.items()
        if m == FLOOR or m.startswith(FLOOR + ".")
        for t in targets
        if not (t == FLOOR or t.startswith(FLOOR + "."))
    )
    assert upward == []


def test_imports_between_hub_modules_sit_at_the_top():
    _, nested = graph()
    assert [f"{m}:{line} imports {t}" for m, line, t in nested] == []


def test_only_heavy_libraries_are_imported_late_each_with_its_reason():
    late = []
    for name, path in modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), str(path))
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                first = (node.names[0].name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
                if first == "hub" or getattr(node, "level", 0):
                    continue  # test_imports_between_hub_modules_sit_at_the_top
                if first not in HEAVY:
                    continue  # the standard library: cheap, and late only where it is used once
                # The reason is a comment on the line, or above the group of imports it starts.
                above = node.lineno - 2
                while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
                    above -= 1
                before = lines[above].strip() if above >= 0 else ""
                if not (before.startswith("#") or "#" in lines[node.lineno - 1]):
                    late.append(f"{name}:{node.lineno} imports {first} late without saying why")
    assert late == []


def test_no_module_is_too_long():
    long = [f"{name}: {n} lines" for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []


if __name__ == "__main__":
    edges, nested = graph()
    for m in sorted(edges):
        print(m, "->", ", ".join(sorted(edges[m])) or "-")
    for group in circles(edges):
        print("circle:", " <-> ".join(group))
