"""The rooms and their doors, checked on the source: a route handler reads and writes through
`gateway/services/`, never the store itself, so a rule about reading dossiers lives in one place; and no
arrow runs back up from the use cases or below to the wiring and the entry points."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the source, at any depth, relative ones made absolute from `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            # Each imported name may be a module too: `from gateway import store`.
            found += [(node.lineno, module), *((node.lineno, f"{module}.{a.name}") for a in node.names)]
    return found


def reaching(folder: str, forbidden: str) -> list[str]:
    """`file:line imports module` for each import of `forbidden` (or below it) in the package at `folder`."""
    out: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        for line, module in imports(path.read_text(encoding="utf-8"), package):
            where = f"{path.relative_to(ROOT)}:{line}"
            if (module == forbidden or module.startswith(forbidden + ".")) and len(module) > len(out.get(where, "")):
                out[where] = module  # the most precise name the line imports
    return [f"{where} imports {module}" for where, module in out.items()]


def test_the_api_reaches_the_store_only_through_services() -> None:
    assert reaching("gateway/api", "gateway.store") == []


LOWER = ("gateway/services", "gateway/store", "gateway/domain", "gateway/adapters")
UPPER = ("gateway.bootstrap", "gateway.cli", "gateway.app", "gateway.api")


def test_no_arrow_runs_back_up_from_the_use_cases_and_below() -> None:
    """What a use case needs from the wiring is passed in: the rooms below never import the ones above."""
    assert [line for low in LOWER for up in UPPER for line in reaching(low, up)] == []


def test_services_are_rooms_by_capability() -> None:
    """At the top of services/ only what every use case shares; each capability a package with its opening line."""
    services = ROOT / "gateway" / "services"
    assert sorted(p.name for p in services.glob("*.py")) == ["__init__.py", "errors.py", "progress.py",
                                                             "unit_of_work.py"]
    for package in (p for p in services.iterdir() if p.is_dir() and p.name != "__pycache__"):
        opening = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert opening, f"{package.name}/__init__.py says nothing of what the package serves"


def test_every_way_of_importing_the_store_is_seen() -> None:
    source = ("from ..store import dossiers\n"
              "import gateway.store.tables\n"
              "from gateway import store\n"
              "def handler():\n"
              "    from gateway.store.feed import read\n")
    found = {(line, module) for line, module in imports(source, "gateway.api")
             if module.startswith("gateway.store")}
    assert {line for line, _ in found} == {1, 2, 3, 5}
    assert ("gateway.store.dossiers" in {m for _, m in found}) and reaching("gateway/api", "gateway.services")
