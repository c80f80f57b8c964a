"""docs/api.md is the OpenAPI document rendered by `gateway api-reference`; when a route, its roles, its
docstring or its model changes and the file was not generated again, this fails."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gateway.api.openapi import build
from gateway.api.reference import render
from gateway.app import route_map
from gateway.cli import main

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_docs_api_md_is_what_the_generator_renders_now() -> None:
    stale = API_MD.read_text(encoding="utf-8") != render(build(route_map()))
    assert not stale, "docs/api.md is stale: run `.venv/bin/gateway api-reference > docs/api.md` and commit it"


def test_every_route_is_there_with_its_roles_description_parameters_and_body_fields() -> None:
    document = build(route_map())
    text = render(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in text
    filing = document["paths"]["/api/v1/dossiers"]["post"]
    assert filing["summary"] == "File a dossier."
    assert filing["description"].startswith("Roles: portal, national_portal.\n\n201 with the stored dossier")
    assert "409 for the same code with another body" in text
    assert "Body (`application/json`): [DossierIn](#dossierin)." in text
    assert "| `procedure_name` | string | yes | min length 1; max length 500 |" in text
    assert "| `id_number` | query | string | no | pattern `^(\\d{12}|\\d{9})$` |".replace("|\\d", "\\|\\d") in text
    assert "Roles: none (no API key)." in text.split("### `POST /api/v1/callbacks/postal/{provider_name}`")[1]


def test_the_command_prints_it_and_writes_it(tmp_path: Path) -> None:
    expected = render(build(route_map()))
    printed = CliRunner().invoke(main, ["api-reference"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == expected
    out = tmp_path / "api.md"
    assert CliRunner().invoke(main, ["api-reference", "-o", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == expected
