"""Specification: the console's Workflows view (MWAA Serverless) in Debian's chromium: the list,
a workflow's configuration, versions and runs, starting and stopping a run, its task instances.
Against a control-plane-only server (runs stay STARTING until stopped); the engine's part (task
states, logs) is the API's, checked in test_serverless_workflows.py."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live_server import LiveServer
from support.serverless import EMPTY, ROLE, put

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("serverless-console") / "data").start()
    yield server
    server.stop()


def test_the_workflows_view_lists_versions_and_starts_and_stops_runs(live: LiveServer, browser: Any) -> None:
    bucket = live.bucket("console-flows")
    location = put(bucket, "nightly.yaml", f"nightly:\n  schedule: '0 3 * * *'\n  tasks:\n    extract:\n      operator: {EMPTY}\n")
    client = live.client("mwaa-serverless")
    arn = client.create_workflow(Name="nightly", DefinitionS3Location=location, RoleArn=ROLE,
                                 Description="loads the day")["WorkflowArn"]
    client.update_workflow(WorkflowArn=arn, DefinitionS3Location=location, RoleArn=ROLE, Description="loads the day")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.endpoint + "/console/")
    key, secret = live.credentials()
    page.fill("#accessKeyId", key)
    page.fill("#secretAccessKey", secret)
    page.click("#sign-in")
    page.wait_for_selector("#sign-out")
    page.click("nav >> text=Workflows")
    try:
        page.wait_for_selector("tr[data-workflow='nightly'] >> text=READY")
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serverless-workflows.png"), full_page=True)
    page.click("a:text('nightly')")
    page.wait_for_selector("text=loads the day")
    assert page.locator("dd code", has_text="0 3 * * *").count() == 1
    page.wait_for_selector("#wf-versions ~ div tbody tr:nth-child(2)")
    assert page.locator("#run-version option").count() == 3  # latest + the two versions
    page.click("#start-run")
    page.wait_for_selector("h1:text-matches('^Run ')")
    page.wait_for_selector("[data-status='STARTING']")
    page.wait_for_selector("tr[data-task='extract'] >> text=EmptyOperator")
    page.click("#stop-run")
    page.wait_for_selector("dd [data-status='STOPPED']")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serverless-run.png"), full_page=True)
    run_id = page.locator("h1").inner_text().split()[-1]
    assert client.get_workflow_run(WorkflowArn=arn, RunId=run_id)["RunDetail"]["RunState"] == "STOPPED"
    assert errors == []
    context.close()
