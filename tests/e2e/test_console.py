"""The web console (`/console/`) in a real browser against a live `airdock serve`.

Debian's chromium (installed by `make install`) is driven by the pinned Playwright package; no
browser is downloaded. Every API call the page makes is SigV4-signed in the browser and checked by
the same verifier as boto3's. Screenshots of each page go to artifacts/console/ (gitignored).

Without Airflow (control-plane-only server): static files, the signed extension routes, the
browser's signature against botocore's, sign-in errors, validation messages next to their field,
tags, Resume offered only once a pause finished, an old failed update shown as history. With
Airflow (`-m airflow`): create → AVAILABLE → Airflow UI through SSO → edit MaxWorkers → pause (0
workers on the chart) → resume → delete, all through the page.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from airdock.core.models import LastUpdateShape, UpdateError
from airdock.local.sample import EXAMPLE_DAG
from support.live_server import REPO, LiveServer

ARTIFACTS = REPO / "artifacts" / "console"
BUCKET = "console-dags"
ROLE = "arn:aws:iam::000000000000:role/console"
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen


def seed(live: LiveServer) -> None:
    dags = live.bucket(BUCKET) / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "example_hello.py").write_text(EXAMPLE_DAG)


def shot(page: Any, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def signed(live: LiveServer, method: str, path: str, query: str = "") -> requests.Response:
    """A request signed by botocore's own signer (what any SDK would send)."""
    key, secret = live.credentials()
    url = live.endpoint + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=b"")
    SigV4Auth(Credentials(key, secret), "airflow", "us-east-1").add_auth(request)
    return requests.request(method, url, headers=dict(request.headers), timeout=10)



def new_page(browser: Any, live: LiveServer) -> Any:
    # Playwright's wait_for_function evaluates its predicate as a string, which the console's
    # own Content-Security-Policy (script-src 'self') forbids; the page's CSP is not under test.
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    page.goto(live.endpoint + "/console/")
    return page


def sign_in(page: Any, key: str, secret: str) -> None:
    page.fill("#accessKeyId", key)
    page.fill("#secretAccessKey", secret)
    page.click("#sign-in")


# ================================================================ without Airflow


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("console") / "data").start()
    seed(live)
    yield live
    live.stop()


def test_the_console_is_served_as_static_files(plain: LiveServer) -> None:
    index = requests.get(plain.endpoint + "/console/", timeout=10)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert requests.get(plain.endpoint + "/console/js/sigv4.js", timeout=10).headers["content-type"].startswith("text/javascript")
    redirect = requests.get(plain.endpoint + "/console", timeout=10, allow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/console/"
    # requests itself folds "/console/../x" to "/x" (the signed API: 403); encoded dots reach us.
    for path in ("/console/%2e%2e/pyproject.toml", "/console/js/%2e%2e/%2e%2e/pyproject.toml", "/console/nope.js",
                 "/console/.hidden"):
        assert requests.get(plain.endpoint + path, timeout=10).status_code == 404, path
    assert requests.post(plain.endpoint + "/console/", timeout=10).status_code == 405


def test_extension_routes_are_signed_and_read_only(plain: LiveServer) -> None:
    unsigned = requests.get(plain.endpoint + "/_airdock/environments/x/metrics", timeout=10)
    assert unsigned.status_code == 403 and unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert signed(plain, "GET", "/_airdock/environments/nope/metrics").status_code == 404
    plain.client().create_environment(
        Name="ext1", ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})
    metrics = signed(plain, "GET", "/_airdock/environments/ext1/metrics", f"since={time.time() - 60}&names=QueuedTasks%2CWorkerCount")
    assert metrics.status_code == 200, metrics.text
    assert set(metrics.json()["Metrics"]) == {"QueuedTasks", "WorkerCount"}
    events = signed(plain, "GET", "/_airdock/environments/ext1/events", "limit=5").json()["Events"]
    assert events[-1]["detail"] == {"EnvironmentName": "ext1", "Status": "CREATING"}
    logs = signed(plain, "GET", "/_airdock/environments/ext1/logs/Task")
    assert logs.status_code == 200 and logs.json()["LogGroup"] == "airflow-ext1-Task"
    assert signed(plain, "GET", "/_airdock/environments/ext1/logs/Nope").status_code == 400
    assert signed(plain, "DELETE", "/_airdock/environments/ext1/metrics").status_code == 404


def test_the_browser_signs_exactly_as_botocore(plain: LiveServer, browser: Any) -> None:
    """Same URL as boto3 serialises it (ARN double-encoded, repeated query keys), same signature."""
    mwaa = plain.client()
    sent: list[Any] = []
    mwaa.meta.events.register("before-send.mwaa.UntagResource", lambda request, **_: sent.append(request))
    arn = "arn:aws:airflow:us-east-1:000000000000:environment/nope"
    with pytest.raises(mwaa.exceptions.ResourceNotFoundException):
        mwaa.untag_resource(ResourceArn=arn, tagKeys=["b key", "a", "ü"])
    url = sent[0].url
    page = new_page(browser, plain)
    result = page.evaluate("""async ([endpoint, arn]) => {
        const api = await import('/console/js/api.js');
        const sig = await import('/console/js/sigv4.js');
        const keys = ['b key', 'a', 'ü'];
        const path = `/tags/${sig.uriEncode(arn)}`;
        const query = keys.map((k) => `tagKeys=${sig.uriEncode(k)}`).join('&');
        const url = `${endpoint}${path}?${query}`;
        const signed = await sig.signRequest({method: 'DELETE', url, body: '', accessKeyId: 'AKIDEXAMPLE',
            secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'us-east-1',
            date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5))});
        return {url, signature: signed.signature, canonical: signed.canonicalRequest};
    }""", [plain.endpoint, arn])
    assert result["url"] == url
    request = AWSRequest(method="DELETE", url=url, data=b"", headers={
        "X-Amz-Date": "20260102T030405Z", "X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()})
    request.context["timestamp"] = "20260102T030405Z"
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "airflow", "us-east-1")
    canonical = auth.canonical_request(request)
    assert result["canonical"] == canonical
    assert result["signature"] == auth.signature(auth.string_to_sign(request, canonical), request)
    page.context.close()


def test_a_wrong_key_shows_a_clear_sign_in_error(plain: LiveServer, browser: Any) -> None:
    key, secret = plain.credentials()
    page = new_page(browser, plain)
    sign_in(page, "AKIANOTAKEY000000000", secret)
    error = page.locator("#signin-error")
    error.wait_for(state="visible")
    assert "access key ID is not known" in error.inner_text()
    assert page.get_attribute("#accessKeyId", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "accessKeyId"
    sign_in(page, key, secret + "x")
    page.wait_for_function("document.querySelector('#signin-error').textContent.includes('secret access key does not match')")
    assert page.get_attribute("#secretAccessKey", "aria-invalid") == "true"
    shot(page, "01-sign-in-wrong-key")
    assert sessionStorage(page) is None
    sign_in(page, key, secret)
    page.get_by_role("heading", name="Environments").wait_for()
    assert sessionStorage(page)["accessKeyId"] == key
    assert page.evaluate("localStorage.length") == 0  # the keys live in session storage only
    assert not page.js_errors
    page.context.close()


def sessionStorage(page: Any) -> Any:
    return page.evaluate("JSON.parse(sessionStorage.getItem('airdock.console.session'))")


def test_validation_errors_appear_next_to_the_field_they_concern(plain: LiveServer, browser: Any) -> None:
    page = new_page(browser, plain)
    sign_in(page, *plain.credentials())
    page.get_by_role("heading", name="Environments").wait_for()
    page.click("a.button:has-text('Create environment')")
    page.fill("#f-Name", "1-bad")
    page.fill("#f-ExecutionRoleArn", ROLE)
    page.fill("#f-SourceBucketArn", f"arn:aws:s3:::{BUCKET}")
    page.fill("#f-SubnetIds", "subnet-a, subnet-b")
    page.fill("#f-SecurityGroupIds", "sg-1")
    page.click("#submit-environment")
    # The shape check: MWAA's "Value '1-bad' at 'name' failed to satisfy constraint" under Name.
    page.locator("#err-Name").wait_for(state="visible")
    assert "at 'name' failed to satisfy constraint" in page.inner_text("#err-Name")
    assert page.get_attribute("#f-Name", "aria-invalid") == "true"
    assert "err-Name" in page.get_attribute("#f-Name", "aria-describedby")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    shot(page, "03-create-validation-name")
    # A domain rule naming its member: "Invalid MaxWorkers: 30. ..." under Maximum workers.
    page.fill("#f-Name", "console1")
    page.fill("#f-MaxWorkers", "30")
    page.click("#submit-environment")
    page.wait_for_function("document.querySelector('#err-MaxWorkers').textContent.includes('Invalid MaxWorkers')")
    assert page.locator("#err-Name").is_hidden()
    shot(page, "04-create-validation-maxworkers")
    # A nested member: a log level's module, and a map key at its map.
    page.fill("#f-MaxWorkers", "2")
    page.fill("#AirflowConfigurationOptions-key-1", "core.executor")
    page.fill("#AirflowConfigurationOptions-value-1", "LocalExecutor")
    page.click("#submit-environment")
    page.wait_for_function("!document.querySelector('#err-AirflowConfigurationOptions').hidden")
    assert "core.executor" in page.inner_text("#err-AirflowConfigurationOptions")
    page.click("#AirflowConfigurationOptions-rows button:has-text('Remove')")
    page.fill("#Tags-key-1", "city")
    page.fill("#Tags-value-1", "Zürich")  # a UTF-8 body, signed in the browser
    page.click("#submit-environment")
    page.wait_for_url("**/console/#/environments/console1")
    page.locator("#env-status .badge").wait_for()
    assert plain.client().get_environment(Name="console1")["Environment"]["Tags"] == {"city": "Zürich"}
    assert not page.js_errors
    page.context.close()


def test_tags_are_edited_on_the_detail_page(plain: LiveServer, browser: Any) -> None:
    page = new_page(browser, plain)
    sign_in(page, *plain.credentials())
    page.get_by_role("heading", name="Environments").wait_for()
    page.click("a:text-is('console1')")
    page.locator("#tags table").wait_for()
    page.fill("#tag-key", "team")
    page.fill("#tag-value", "data platform")
    page.click("#add-tag")
    page.locator("#tags td:text-is('data platform')").wait_for()
    page.click("button[aria-label='Remove tag city']")  # UntagResource: /tags/{double-encoded ARN}?tagKeys=
    page.locator("#tags td:text-is('Zürich')").wait_for(state="detached")
    assert plain.client().get_environment(Name="console1")["Environment"]["Tags"] == {"team": "data platform"}
    page.locator("#events li").first.wait_for()
    shot(page, "05-detail-creating-control-plane-only")
    assert not page.js_errors
    page.context.close()


def rewrite(live: LiveServer, name: str, change: Callable[[Any], None]) -> None:
    """Put an environment into a state a control-plane-only server cannot reach by itself (no
    Airflow, no lifecycle runner): the states the lifecycle and the workflows write."""
    from airdock.local.sqlite_repository import SqliteEnvironmentRepository

    repository = SqliteEnvironmentRepository(live.data_dir / "state.db")
    try:
        record = repository.get(name)
        change(record)
        repository.replace(record)
    finally:
        repository.close()


def status_reason(live: LiveServer, name: str) -> str:
    # Not in botocore's MWAA model (boto3 drops it); the console reads the API's JSON.
    return str(signed(live, "GET", f"/environments/{name}").json()["Environment"].get("StatusReason"))


def create_via_api(live: LiveServer, name: str) -> None:
    live.client().create_environment(
        Name=name, ExecutionRoleArn=ROLE, SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})


def available(record: Any) -> None:
    record.environment.Status = "AVAILABLE"
    record.environment.StatusReason = None


def test_resume_is_offered_only_once_the_pause_has_finished(plain: LiveServer, browser: Any) -> None:
    from airdock.core.lifecycle import PAUSED_REASON

    # Given an AVAILABLE environment, paused from its page; without a lifecycle runner (control
    # plane only) the pause stays where a real one is while Airflow's processes stop
    create_via_api(plain, "pausable")
    rewrite(plain, "pausable", available)
    page = new_page(browser, plain)
    sign_in(page, *plain.credentials())
    page.get_by_role("heading", name="Environments").wait_for()
    page.goto(plain.endpoint + "/console/#/environments/pausable")
    wait_status(page, "AVAILABLE", 10)
    page.click("#pause")
    wait_status(page, "PENDING", 10)
    page.get_by_text("Pause requested.").wait_for()
    # Then Resume is there but not offered while pausing (the API would refuse it)
    assert status_reason(plain, "pausable").startswith("Pausing")
    assert page.is_disabled("#resume") and "once the pause has finished" in page.get_attribute("#resume", "title")
    shot(page, "05b-detail-pausing")
    # When the pause finishes (what the lifecycle writes then)
    def paused(record: Any) -> None:
        record.internal["lifecycle"].update(state="done")
        record.environment.StatusReason = PAUSED_REASON

    rewrite(plain, "pausable", paused)
    # Then Resume is offered, and the API accepts it
    page.locator("#resume:not([disabled])").wait_for(timeout=10_000)
    page.click("#resume")
    page.get_by_text("Resume requested.").wait_for()
    assert status_reason(plain, "pausable").startswith("Resuming")
    page.locator("#resume[disabled]").wait_for(timeout=10_000)
    assert not page.js_errors
    page.context.close()


def test_the_list_shows_an_old_failed_update_as_history_and_a_failed_status_with_its_reason(
        plain: LiveServer, browser: Any) -> None:
    # Given an environment whose update failed a week ago and was rolled back (AVAILABLE since), and
    # one whose failed update could not be rolled back (UPDATE_FAILED now)
    week_ago = time.time() - 7 * 24 * 3600
    for name, status, message in (("rolledback", "AVAILABLE", "Could not install requirements: nope==1"),
                                  ("stuck", "UPDATE_FAILED", "The update failed; rolling back also failed")):
        create_via_api(plain, name)

        def failed_update(record: Any, status: str = status, message: str = message) -> None:
            record.environment.Status = status
            record.environment.StatusReason = None
            record.environment.LastUpdate = LastUpdateShape(
                Status="FAILED", CreatedAt=week_ago, Source="UpdateEnvironment",
                Error=UpdateError(ErrorCode="UPDATE_FAILED", ErrorMessage=message))

        rewrite(plain, name, failed_update)
    page = new_page(browser, plain)
    sign_in(page, *plain.credentials())
    page.locator("tr[data-env='stuck'] .badge[data-status='UPDATE_FAILED']").wait_for()
    # Then the list shows the rolled-back environment as what it is, AVAILABLE, with no error
    assert page.locator("tr[data-env='rolledback'] .badge").get_attribute("data-status") == "AVAILABLE"
    assert page.inner_text("tr[data-env='rolledback'] td.reason") == ""
    # And a failed status with the error that explains it
    assert "rolling back also failed" in page.inner_text("tr[data-env='stuck'] td.reason")
    shot(page, "05c-environments-failed-update")
    # And the old failure is still on the environment's page, as its last update
    page.click("a:text-is('rolledback')")
    page.locator("#last-update-error").wait_for()
    assert "nope==1" in page.inner_text("#last-update")
    assert not page.js_errors
    page.context.close()


# ================================================================ with Airflow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("console-airflow") / "data", provision=True,
                        env={"AIRDOCK_METRICS_INTERVAL_S": "2"}).start()
    seed(server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def session(live: LiveServer, browser: Any) -> Iterator[Any]:
    page = new_page(browser, live)
    sign_in(page, *live.credentials())
    page.get_by_role("heading", name="Environments").wait_for()
    yield page
    page.context.close()


def wait_status(page: Any, status: str, timeout_s: float) -> None:
    page.locator(f"#env-status .badge[data-status='{status}']").wait_for(timeout=timeout_s * 1000)


NAME = "console-af"


@pytest.mark.airflow
def test_create_an_environment_and_watch_it_become_available(live: LiveServer, session: Any) -> None:
    page = session
    shot(page, "02-environments-empty")
    page.click("a.button:has-text('Create environment')")
    page.fill("#f-Name", NAME)
    page.fill("#f-ExecutionRoleArn", ROLE)
    page.fill("#f-SourceBucketArn", f"arn:aws:s3:::{BUCKET}")
    page.fill("#f-SubnetIds", "subnet-a, subnet-b")
    page.fill("#f-SecurityGroupIds", "sg-1")
    page.select_option("#f-EnvironmentClass", "mw1.micro")
    page.fill("#f-MaxWorkers", "1")
    page.fill("#f-AirflowVersion", "3.3.2")
    page.check("#log-WorkerLogs-enabled")
    page.click("#submit-environment")
    page.wait_for_url(f"**/#/environments/{NAME}")
    wait_status(page, "CREATING", 30)
    page.locator("#env-progress .phases li").first.wait_for(timeout=60_000)  # StatusReason, live
    shot(page, "06-detail-creating")
    wait_status(page, "AVAILABLE", 600)
    # The phases seen on the way stay listed, with how the change ended.
    assert page.locator("#env-progress .phases li.done").count() >= 1
    assert page.inner_text("#env-progress .phases li.finished") == "CREATING finished: AVAILABLE"
    page.locator("#events li strong:text-is('AVAILABLE')").wait_for(timeout=15_000)
    page.wait_for_function("document.querySelector('#log-tail').textContent.length > 20", timeout=30_000)
    page.locator("#chart svg path[data-series='WorkerCount']").wait_for(state="attached", timeout=30_000)
    shot(page, "07-detail-available")
    page.goto(live.endpoint + "/console/#/environments")
    page.locator(f"tr[data-env='{NAME}'] .badge[data-status='AVAILABLE']").wait_for()
    shot(page, "08-environments-list")
    assert not page.js_errors


@pytest.mark.airflow
def test_open_the_airflow_ui_through_sso(live: LiveServer, session: Any) -> None:
    page = session
    page.click(f"a:text-is('{NAME}')")
    page.locator("#open-ui:not([disabled])").wait_for()
    with page.context.expect_page() as opened:
        page.click("#open-ui")
    airflow = opened.value
    airflow.wait_for_url(lambda url: url.startswith("http") and "/aws_mwaa/" not in url, timeout=60_000)
    airflow.wait_for_load_state("networkidle", timeout=60_000)
    airflow.get_by_text("example_hello").first.wait_for(timeout=90_000) if "/dags" in airflow.url else None
    shot(airflow, "09-airflow-ui-via-sso")
    assert "login" not in airflow.url
    # The UI's own API answers as the signed-in user.
    assert airflow.evaluate("fetch('/api/v2/dags', {credentials: 'same-origin'}).then(r => r.status)") == 200
    airflow.close()


@pytest.mark.airflow
def test_edit_max_workers(live: LiveServer, session: Any) -> None:
    page = session
    page.click("#edit")
    page.locator("#f-MaxWorkers").wait_for()
    assert page.input_value("#f-MaxWorkers") == "1"
    page.fill("#f-MaxWorkers", "2")
    shot(page, "10-edit")
    page.click("#submit-environment")
    page.wait_for_url(f"**/#/environments/{NAME}")
    wait_status(page, "AVAILABLE", 600)
    page.wait_for_function("document.querySelector('#summary').textContent.includes('1 to 2')", timeout=30_000)
    env = live.client().get_environment(Name=NAME)["Environment"]
    assert env["MaxWorkers"] == 2 and env["LastUpdate"]["Status"] == "SUCCESS"
    shot(page, "11-detail-updated")


@pytest.mark.airflow
def test_pause_then_resume_from_the_page(live: LiveServer, session: Any) -> None:
    page = session
    page.goto(live.endpoint + f"/console/#/environments/{NAME}")
    wait_status(page, "AVAILABLE", 60)
    page.locator("#chart svg desc:has-text('Workers 1')").wait_for(state="attached", timeout=30_000)
    page.click("#pause")
    wait_status(page, "PENDING", 30)
    # Resume is offered once the pause has finished, not before
    page.locator("#resume:not([disabled])").wait_for(timeout=300_000)
    assert "Paused by Airdock" in page.inner_text("#env-progress")
    # The chart and the numbers say what runs while paused: no worker
    page.locator("#chart svg desc:has-text('Workers 0')").wait_for(state="attached", timeout=30_000)
    page.wait_for_function("document.querySelector('#workers .stat-value').textContent === '0'", timeout=15_000)
    shot(page, "12a-detail-paused")
    page.click("#resume")
    wait_status(page, "AVAILABLE", 300)
    page.locator("#chart svg desc:has-text('Workers 1')").wait_for(state="attached", timeout=60_000)
    assert not page.js_errors


@pytest.mark.airflow
def test_delete_with_confirmation(live: LiveServer, session: Any) -> None:
    page = session
    page.click("#delete")
    page.locator("#delete-dialog[open]").wait_for()
    assert page.evaluate("document.activeElement.id") == "confirm-name"
    page.fill("#confirm-name", "not-it")
    page.click("#confirm-delete")
    page.locator("#confirm-error").wait_for(state="visible")
    page.fill("#confirm-name", NAME)
    shot(page, "12-delete-confirm", full_page=False)
    page.click("#confirm-delete")
    page.get_by_text(f"{NAME} does not exist (any more).").wait_for(timeout=300_000)
    shot(page, "13-deleted")
    with pytest.raises(live.client().exceptions.ResourceNotFoundException):
        live.client().get_environment(Name=NAME)
    assert not page.js_errors
