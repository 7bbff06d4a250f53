"""The layers keep their places (docs/architecture.md): who may import whom, and no import circles.

Every import counts, a function's own included: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("elbia", "resources", "functions", "billing")
APPS = ("resources", "functions", "billing")
#: The ground floor's modules allowed to reach up into the apps.
GROUND_FLOOR_EXCEPTIONS = {
    "elbia.urls",  # the URL configuration
    "elbia.accounts.views",  # the overview page
    "elbia.accounts.management.commands.seed_demo",  # demo seeding
}
#: Modules that speak the domain: no HTTP framework.
DOMAIN_MODULES = ("services", "selectors", "tasks")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


MODULES = _modules()


def imported_names(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_module(name: str) -> str | None:
    """The project module an imported name lives in (``elbia.errors.Conflict`` -> ``elbia.errors``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


GRAPH = {
    module: {found for name in imported_names(path) if (found := project_module(name)) not in (None, module)}
    for module, path in MODULES.items()
}


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.rpartition(".")[2] in DOMAIN_MODULES))
def test_services_selectors_and_tasks_know_nothing_of_http(module):
    http = sorted(name for name in imported_names(MODULES[module]) if name.split(".")[0] == "rest_framework")
    assert not http, f"{module} imports {http}: raise elbia.errors instead and let each surface map them"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.split(".")[0] == "elbia"))
def test_the_ground_floor_never_reaches_up_into_the_apps(module):
    if module in GROUND_FLOOR_EXCEPTIONS:
        return
    apps = sorted(dependency for dependency in GRAPH[module] if dependency.split(".")[0] in APPS)
    assert not apps, f"{module} imports {apps}: elbia/ is the ground floor the apps stand on"


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for dependency in graph[module]:
            if dependency not in index:
                visit(dependency)
                low[module] = min(low[module], low[dependency])
            elif dependency in stack:
                low[module] = min(low[module], index[dependency])
        if low[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            if component:
                circles.append(sorted([module, *component]))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles():
    assert import_circles(GRAPH) == []


def test_circles_are_found():
    """The check itself: a circle through three modules is reported, a chain is not, and the real graph is read."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []
    assert "elbia.errors" in GRAPH["resources.services"]
