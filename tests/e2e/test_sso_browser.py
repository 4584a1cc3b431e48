"""Web login as in the MWAA console: a real headless Chromium opens the SSO link and lands in the
real Airflow 3 UI, signed in with the role the token carries.

Chromium is Debian's (`make install` puts it there), driven by the pinned Playwright package; no
browser is downloaded. Screenshots go to artifacts/ (gitignored).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.live_server import REPO, LiveServer
from support.mwaa_access import create, seed_bucket, sso_url, wait_available, wait_dag_visible, web_login

pytestmark = pytest.mark.airflow

NAME = "sso3"
DAG = "example_hello"
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clock_offset: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("airdock-sso") / "data", provision=True,
                      env={"AIRDOCK_TOKEN_CLOCK_OFFSET_FILE": str(clock_offset)}).start()
    seed_bucket(live)
    create(live, NAME, "3.3.2")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def env(server: LiveServer) -> dict[str, Any]:
    found = wait_available(server, NAME)
    wait_dag_visible(server, NAME, DAG)
    return found


def trigger_from_page(page: Any) -> int:
    """POST a DAG run from inside the signed-in page, with the UI's own credentials."""
    return int(page.evaluate("""async (dag) => {
        const r = await fetch(`/api/v2/dags/${dag}/dagRuns`, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({logical_date: null})});
        return r.status;
    }""", DAG))


def signed_in_on_dag_list(browser: Any, login: dict[str, Any]) -> tuple[Any, Any]:
    """A fresh browser context opened on the SSO link, then on the DAG list once it shows DAG."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(sso_url(login))
    page.wait_for_url(lambda url: "/aws_mwaa/" not in url, timeout=30_000)
    page.goto(f"http://{login['WebServerHostname']}/dags")
    page.get_by_text(DAG).first.wait_for(timeout=60_000)
    return context, page


def test_the_sso_link_signs_the_browser_into_the_airflow_ui_with_the_dag_list_visible(
        server: LiveServer, env: dict[str, Any], browser: Any) -> None:
    context, page = signed_in_on_dag_list(browser, web_login(server, NAME))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sso-admin-dag-list.png"), full_page=True)
    assert "login" not in page.url
    assert trigger_from_page(page) == 200  # an Admin may trigger
    context.close()


def test_a_viewer_sees_the_dags_but_cannot_trigger_one(server: LiveServer, env: dict[str, Any], browser: Any) -> None:
    context, page = signed_in_on_dag_list(browser, web_login(server, NAME, role="Viewer"))
    page.screenshot(path=str(ARTIFACTS / "sso-viewer-dag-list.png"), full_page=True)
    assert trigger_from_page(page) == 403
    context.close()


def test_a_used_login_link_cannot_be_replayed(server: LiveServer, env: dict[str, Any], browser: Any) -> None:
    login = web_login(server, NAME)
    first = browser.new_context()
    first.new_page().goto(sso_url(login))
    first.close()
    second = browser.new_context()
    page = second.new_page()
    page.goto(sso_url(login))
    page.get_by_text("already used").wait_for(timeout=15_000)
    assert "_token" not in {c["name"] for c in second.cookies()}
    second.close()


def test_an_expired_login_link_is_refused(server: LiveServer, env: dict[str, Any], clock_offset: Path) -> None:
    login = web_login(server, NAME)
    clock_offset.write_text("61")
    try:
        response = requests.post(f"http://{login['WebServerHostname']}/aws_mwaa/aws-console-sso",
                                 data={"token": login["WebToken"]}, allow_redirects=False, timeout=30)
    finally:
        clock_offset.write_text("0")
    assert response.status_code == 401
    assert "expired" in response.text
    assert "_token" not in response.cookies


def test_a_login_token_of_another_environment_or_a_garbled_one_is_refused(server: LiveServer, env: dict[str, Any]) -> None:
    from airdock_runtime import tokens

    foreign = tokens.mint_web_token(tokens.new_key(), NAME, "root", "root", "Admin")
    for token in (foreign, "garbage", ""):
        response = requests.post(f"http://{env['WebserverUrl']}/aws_mwaa/aws-console-sso", data={"token": token},
                                 allow_redirects=False, timeout=30)
        assert response.status_code == 401, token
        assert "Sign-in refused" in response.text


def test_the_sso_page_takes_the_token_from_the_fragment_which_the_server_never_sees(
        server: LiveServer, env: dict[str, Any]) -> None:
    page = requests.get(f"http://{env['WebserverUrl']}/aws_mwaa/aws-console-sso?login=true", timeout=30)
    assert page.status_code == 200
    assert "location.hash" in page.text and 'method="post"' in page.text
