"""Specification: the API function registers exactly the operations table: MWAA's 12 operations
plus Airdock's extensions, and the two sets never share a binding."""
from __future__ import annotations

import re

from airdock.core.operations import ALL_OPERATIONS, EXTENSIONS, OPERATIONS
from airdock.local.functions import load_function
from airdock.openapi import openapi_document


def registered_routes() -> set[tuple[str, str]]:
    app = load_function("api").app
    routes = [*app._static_routes, *app._dynamic_routes]
    # Powertools spells path parameters <Name>; the table (OpenAPI) spells them {Name}.
    return {(r.method.upper(), re.sub(r"<(\w+)>", r"{\1}", r.path)) for r in routes}


def test_the_api_resolver_registers_exactly_the_operations_table() -> None:
    assert registered_routes() == {(op.method, op.path) for op in ALL_OPERATIONS}


def test_there_are_twelve_mwaa_operations_with_unique_bindings() -> None:
    assert len(OPERATIONS) == 12
    assert len({(op.method, op.path) for op in OPERATIONS}) == 12
    assert len({op.name for op in OPERATIONS}) == 12


def test_extensions_are_pause_and_resume_and_do_not_collide_with_mwaa() -> None:
    assert {op.name for op in EXTENSIONS} == {"PauseEnvironment", "ResumeEnvironment"}
    assert not {(op.method, op.path) for op in EXTENSIONS} & {(op.method, op.path) for op in OPERATIONS}
    assert not {op.name for op in EXTENSIONS} & {op.name for op in OPERATIONS}


def test_the_openapi_document_lists_every_operation_and_marks_the_extensions() -> None:
    paths = openapi_document()["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert documented == {(op.method, op.path) for op in ALL_OPERATIONS}
    for op in EXTENSIONS:
        assert paths[op.path][op.method.lower()].get("x-airdock-extension") is True
    for op in OPERATIONS:
        assert "x-airdock-extension" not in paths[op.path][op.method.lower()]
