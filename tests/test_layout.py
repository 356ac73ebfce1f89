"""The shape of the code: no import circles in app/ and jobs/, and the
README's layout table says what is in the tree."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules() -> dict[str, Path]:
    """Every module of app/ and jobs/ by its dotted name."""
    found = {}
    for package in ("app", "jobs"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that this file imports, anywhere in it (inside
    functions too). `from app import keys` is app.keys; `from app import
    create_app` is the app package itself."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                targets.add(submodule if submodule in known else node.module)
    return targets


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, str] = {}  # visiting / done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "visiting"
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "visiting":
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_module_reaches_itself_through_its_imports():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def layout_paths() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    # A line starting with spaces goes on describing the path above.
    return [line.split()[0] for line in block.splitlines() if line[:1].strip()]


def test_the_readme_layout_names_what_is_there():
    listed = layout_paths()
    missing = [path for path in listed if not (ROOT / path).exists()]
    assert not missing, f"in the README's layout but not in the tree: {missing}"
    modules_here = sorted(
        str(path.relative_to(ROOT))
        for pattern in ("app/*.py", "jobs/*.py", "bin/*")
        for path in ROOT.glob(pattern)
    )
    covered = [
        m
        for m in modules_here
        if m in listed or any(m.startswith(p) for p in listed if p.endswith("/"))
    ]
    assert covered == modules_here, sorted(set(modules_here) - set(covered))


def test_the_readme_settings_table_lists_exactly_what_config_reads():
    """Every setting comes from app/config.py; the README lists those, no more."""
    source = (ROOT / "app" / "config.py").read_text()
    read = set(re.findall(r'env(?:\.get|iron\.get)?\("([A-Z_]+)"', source))
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])}
    assert read, "found no settings in app/config.py"
    assert listed == read, {"not in the README": read - listed, "not read": listed - read}
