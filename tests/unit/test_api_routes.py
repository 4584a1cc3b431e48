"""Specification: the API function registers exactly the 12 operations of the operations table."""
from __future__ import annotations

import re

from airdock.core.operations import OPERATIONS
from airdock.local.functions import load_function


def registered_routes() -> set[tuple[str, str]]:
    app = load_function("api").app
    routes = [*app._static_routes, *app._dynamic_routes]
    # Powertools spells path parameters <Name>; the table (OpenAPI) spells them {Name}.
    return {(r.method.upper(), re.sub(r"<(\w+)>", r"{\1}", r.path)) for r in routes}


def test_the_api_resolver_registers_exactly_the_operations_table() -> None:
    assert registered_routes() == {(op.method, op.path) for op in OPERATIONS}


def test_there_are_twelve_operations_with_unique_bindings() -> None:
    assert len(OPERATIONS) == 12
    assert len({(op.method, op.path) for op in OPERATIONS}) == 12
    assert len({op.name for op in OPERATIONS}) == 12
