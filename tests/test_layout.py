"""The direction of imports: apps at the edge, the runtime in the middle, training apart.

    vmc_duel (CLI) -> tui, server -> engine        train, export -> engine

Read from the source (every import statement, at any depth, with ast), so an import
inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> top-level packages it must never import
FORBIDDEN = {
    "engine": {"tui", "server", "vmc_duel", "train", "export", "torch"},
    "tui": {"server", "vmc_duel", "train", "export", "torch"},
    "server": {"tui", "vmc_duel", "train", "export", "torch"},
}
# inside engine: sub-package -> engine sub-packages it may import (the data path, upstream only)
ENGINE_ORDER = ["env", "world_model", "policy", "race"]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, absolute names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_direction(package):
    bad = [f"{path.relative_to(ROOT)}:{line} imports {module}"
           for path in sorted((ROOT / package).rglob("*.py"))
           for line, module in imports(path) if module.split(".")[0] in FORBIDDEN[package]]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_engine_sub_packages_import_only_upstream():
    bad = []
    for k, sub in enumerate(ENGINE_ORDER):
        allowed = set(ENGINE_ORDER[: k + 1])
        for path in sorted((ROOT / "engine" / sub).rglob("*.py")):
            for line, module in imports(path):
                parts = module.split(".")
                if parts[0] == "engine" and len(parts) > 1 and parts[1] in ENGINE_ORDER and parts[1] not in allowed:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} (downstream of {sub})")
    assert not bad, "\n".join(bad)


def test_every_package_is_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    layout = page[page.index("## The packages") :]
    packages = ["engine", "tui", "server", "vmc_duel", "train", "export"]
    packages += [f"engine/{sub}" for sub in ENGINE_ORDER]
    missing = [p for p in packages if f"`{p}/`" not in layout]
    assert not missing, f"docs/architecture.md's package table does not name {missing}"
