"""On AWS several web-front tasks of an environment sit behind the load balancer, each with its
own disk: a login token spent on one must be refused by the others, through the control plane's
DynamoDB table (under moto), configured exactly as EcsCompute configures the tasks."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

from airdock.core import tokens
from aws.conftest import Stack
from aws.test_adapters import _services, _up, environment
from support.dynamodb import create_table_from_template
from support.web_front import serving


def _task_environment(stack: Stack) -> dict[str, str]:
    definition = stack.client("ecs").describe_task_definition(
        taskDefinition=_services(stack, "analytics")["web-front"]["taskDefinition"])["taskDefinition"]
    return {v["name"]: v["value"] for v in definition["containerDefinitions"][0]["environment"]}


def sign_in(url: str, token: str) -> requests.Response:
    return requests.post(url + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)


def test_a_login_token_used_on_one_web_front_task_is_refused_by_another(stack: Stack, tmp_path: Path) -> None:
    _up(stack, environment(stack))
    task = _task_environment(stack)
    assert task["AIRDOCK_USED_TOKENS_TABLE"] == stack.environ["AIRDOCK_TABLE_NAME"]  # the control plane's
    create_table_from_template(stack.client("dynamodb"), "EnvironmentsTable", task["AIRDOCK_USED_TOKENS_TABLE"])
    key = tokens.new_key()
    secrets = {"AIRDOCK_TOKEN_KEY": key, "AIRDOCK_JWT_SECRET": "jwt"}  # the task's ECS secrets

    def own_disk(index: int) -> dict[str, Any]:
        return {**task, **secrets, "AIRDOCK_WEB_STATE_DIR": str(tmp_path / f"task-{index}")}

    token = tokens.mint_web_token(key, "analytics", "root", "root", "Admin")
    with ExitStack() as fronts:
        first, second = (fronts.enter_context(serving(own_disk(i))) for i in range(2))
        assert sign_in(first, token).status_code == 303
        replay = sign_in(second, token)
        assert replay.status_code == 403 and "already used" in replay.text
        assert not list(tmp_path.glob("task-*/*.db"))  # nothing kept on a task's own disk
