"""On AWS several web-front tasks of an environment sit behind the load balancer, each with its
own disk: a login token spent on one must be refused by the others, through the environment's
metadata database (a real PostgreSQL here), configured exactly as EcsCompute configures the tasks."""
from __future__ import annotations

from contextlib import ExitStack

import requests

from airdock_runtime import tokens
from aws.conftest import Stack
from aws.test_adapters import _services, _up, environment
from aws.test_web_front_aws import _container, _task_environment
from support.web_front import serving


def sign_in(url: str, token: str) -> requests.Response:
    return requests.post(url + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)


def test_a_login_token_used_on_one_web_front_task_is_refused_by_another(
        stack: Stack, metadata_database: str) -> None:
    _up(stack, environment(stack))
    container = _container(stack, _services(stack, "analytics")["web-front"])
    task = _task_environment(stack, container)
    assert task["AIRDOCK_USED_TOKENS_STORE"] == "metadata-database"
    assert "AIRDOCK_WEB_STATE_DIR" not in task  # nothing on a task's own disk
    # The database URL is the ECS secret every component gets; only its address differs here.
    task["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_database
    token = tokens.mint_web_token(task["AIRDOCK_TOKEN_KEY"], "analytics", "root", "root", "Admin")
    with ExitStack() as fronts:
        first, second = (fronts.enter_context(serving(task)) for _ in range(2))
        assert sign_in(first, token).status_code == 303
        replay = sign_in(second, token)
        assert replay.status_code == 403 and "already used" in replay.text
        fresh = tokens.mint_web_token(task["AIRDOCK_TOKEN_KEY"], "analytics", "root", "root", "Admin")
        assert sign_in(second, fresh).status_code == 303
    with serving(task) as replaced:  # a task started later, e.g. after a deployment
        assert sign_in(replaced, token).status_code == 403
