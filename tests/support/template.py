"""Read template.yaml as data, so tests build their fakes from the real resource definitions."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...).

    `!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` becomes {"Fn::GetAtt": ["A", "B"]}, every other
    `!Fn` becomes {"Fn::Fn": value} — the same shapes as the long form, so the data is what
    CloudFormation itself would see.
    """


def _construct(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct)


def load_cfn_yaml(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


@lru_cache(maxsize=None)
def _cached(path: str, mtime: float) -> dict[str, Any]:
    return load_cfn_yaml(Path(path).read_text())


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The parsed template (cached per file version; treat as read-only)."""
    return _cached(str(path), path.stat().st_mtime)


def resource(logical_id: str, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    resources = load_template(path)["Resources"]
    if logical_id not in resources:
        raise KeyError(f"{path.name} has no resource {logical_id!r}")
    return resources[logical_id]
