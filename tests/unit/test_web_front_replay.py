"""Several web fronts of one local environment share the record of spent login tokens: a token
that signed a browser in on one is refused by every other, and by the same one restarted."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from airdock_runtime import tokens
from airdock_runtime import used_tokens_sqlite as used_tokens
from support.web_front import load_web_front, serving

ENV = "prod"


def sign_in(url: str, token: str) -> requests.Response:
    return requests.post(url + "/aws_mwaa/aws-console-sso", data={"token": token}, allow_redirects=False, timeout=10)


def test_a_login_token_used_on_one_local_web_front_is_refused_by_another_of_the_environment(tmp_path: Path) -> None:
    key = tokens.new_key()
    # What airflow_env gives each web front of the environment: the same state dir and modules.
    environ = {"AIRDOCK_ENVIRONMENT_NAME": ENV, "AIRDOCK_WEB_UPSTREAM": "http://127.0.0.1:9",
               "AIRDOCK_TOKEN_KEY": key, "AIRDOCK_JWT_SECRET": "jwt", "AIRDOCK_WEB_STATE_DIR": str(tmp_path / "web_front"),
               "AIRDOCK_TOKENS_MODULE": tokens.__file__ or "", "AIRDOCK_USED_TOKENS_MODULE": used_tokens.__file__ or ""}
    token = tokens.mint_web_token(key, ENV, "root", "root", "Admin")
    with ExitStack() as fronts:
        first, second = (fronts.enter_context(serving(environ)) for _ in range(2))
        assert sign_in(first, token).status_code == 303
        replay = sign_in(second, token)
        assert replay.status_code == 403 and "already used" in replay.text
        assert sign_in(second, tokens.mint_web_token(key, ENV, "root", "root", "Admin")).status_code == 303
    with serving(environ) as restarted:
        assert sign_in(restarted, token).status_code == 403
    assert (tmp_path / "web_front" / "used-login-tokens.db").stat().st_mode & 0o777 == 0o600


def test_a_web_front_told_to_record_tokens_in_the_metadata_database_does_not_start_without_its_url() -> None:
    # Falling back to memory would let a token be replayed on every other web-front task.
    environ = {"AIRDOCK_ENVIRONMENT_NAME": ENV, "AIRDOCK_WEB_UPSTREAM": "http://127.0.0.1:9", "AIRDOCK_TOKEN_KEY": "k",
               "AIRDOCK_WEB_FRONT_PORT": "0", "AIRDOCK_USED_TOKENS_STORE": "metadata-database"}
    web_front = load_web_front()
    with pytest.raises(ValueError, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        web_front.Config(environ)
    with pytest.raises(ValueError, match="only 'metadata-database'"):
        web_front.Config({**environ, "AIRDOCK_USED_TOKENS_STORE": "dynamodb"})
