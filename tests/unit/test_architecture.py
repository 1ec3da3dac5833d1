"""The layers of ARCHITECTURE.md, enforced: what each part of the package may import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import airflow_provider_alta

PACKAGE = "airflow_provider_alta"
PACKAGE_DIR = Path(airflow_provider_alta.__file__).resolve().parent
REPO = PACKAGE_DIR.parent

# The Airflow adapters; every other module of the package is the pure core.
ADAPTERS = ("hooks", "operators", "sensors", "triggers", "notifications", "get_provider_info")
# Besides the pure core and itself, what each adapter may import.
ADAPTER_MAY_IMPORT = {
    "hooks": set(),
    "operators": {"hooks", "triggers"},
    "sensors": {"hooks", "triggers"},
    "triggers": {"hooks"},
    "notifications": {"hooks"},
    "get_provider_info": set(),
}
# Adapters that must import without Airflow too: Airflow's providers manager reads them first.
AIRFLOW_FREE_ADAPTERS = ("airflow_provider_alta.get_provider_info",)
# Slow or optional libraries the pure core imports only inside the functions that need them.
LAZY_LIBRARIES = {"airflow", "pendulum", "phonenumbers", "redis", "sqlalchemy"}
# Test tooling and examples: they may import the package; the package never imports them.
OUTSIDE = ("tests", "example_dags", "scripts", "benchmarks", "alta_testing")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def layer(module: str) -> str:
    """``"core"`` or the adapter (``hooks``, ``operators``, ...) that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ADAPTERS else "core"


PURE = [name for name in MODULES if layer(name) == "core"]


@cache
def imports(module: str) -> frozenset[str]:
    """Every module ``module`` imports anywhere in its source (top level, functions, TYPE_CHECKING)."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return frozenset(found)


def _root(name: str) -> str:
    return name.split(".")[0]


def test_the_package_is_listed():
    assert {"airflow_provider_alta.config", "airflow_provider_alta.sandbox.server"} <= set(PURE)
    assert {"airflow_provider_alta.hooks.alta", "airflow_provider_alta.operators.batch"}.isdisjoint(PURE)


@pytest.mark.parametrize("module", PURE + list(AIRFLOW_FREE_ADAPTERS))
def test_importing_a_pure_module_loads_no_airflow_and_no_lazy_library(module):
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=120
    )
    modules = json.loads(result.stdout.splitlines()[-1])
    assert module in modules
    assert sorted({_root(name) for name in modules} & LAZY_LIBRARIES) == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_neither_airflow_nor_adapters(module):
    bad = sorted(
        name
        for name in imports(module)
        if _root(name) == "airflow" or (_root(name) == PACKAGE and layer(name) != "core")
    )
    assert bad == [], f"{module} imports {bad}"


@pytest.mark.parametrize("module", [name for name in MODULES if layer(name) != "core"])
def test_adapters_import_only_the_pure_core_and_the_adapters_they_build_on(module):
    allowed = {"core", layer(module), *ADAPTER_MAY_IMPORT[layer(module)]}
    bad = sorted(name for name in imports(module) if _root(name) == PACKAGE and layer(name) not in allowed)
    assert bad == [], f"{module} imports {bad}"


def test_adapter_imports_form_no_cycle():
    graph = {
        module: {name for name in imports(module) if name in MODULES and layer(name) != "core"}
        for module in MODULES
        if layer(module) != "core"
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for name in sorted(graph[module]):
                visit(name, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())


def test_the_package_never_imports_test_tooling_or_examples():
    outside = set(OUTSIDE)
    for folder in OUTSIDE:
        outside.update(path.stem for path in (REPO / folder).glob("*.py"))
    for module in MODULES:
        bad = sorted(name for name in imports(module) if _root(name) in outside)
        assert bad == [], f"{module} imports {bad}"
