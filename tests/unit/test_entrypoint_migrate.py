"""images/airflow/entrypoint.py --migrate and the Airflow 2 webserver's configuration, with a fake
`airflow` executable that records its calls: the schema migration, then (Airflow 2, FAB auth)
the `admin` user the control plane and the web front sign in with — the one step local mode and
the ECS migrate task both run."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest


FAKE_AIRFLOW = """#!{python}
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_STATE"])
calls = json.loads(state.read_text()) if state.exists() else {{"calls": [], "users": []}}
calls["calls"].append(sys.argv[1:])
args = sys.argv[1:]
code = 0
if args[:2] == ["db", "migrate"]:
    code = int(os.environ.get("FAKE_MIGRATE_EXIT", "0"))
elif args[:2] == ["db", "check-migrations"]:
    code = int(os.environ.get("FAKE_SCHEMA_EXIT", "0"))
elif args[:2] == ["users", "list"]:
    print("[warning] some log line first")
    print(json.dumps([{{"id": str(i), "username": u}} for i, u in enumerate(calls["users"])]))
elif args[:2] == ["users", "create"]:
    calls["users"].append(args[args.index("--username") + 1])
    print("echoing the command line: " + " ".join(args))
elif args[:1] == ["webserver"]:
    pass
state.write_text(json.dumps(calls))
sys.exit(code)
"""


@pytest.fixture
def airflow(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "airflow"
    fake.write_text(FAKE_AIRFLOW.format(python=sys.executable))
    fake.chmod(0o755)
    return {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRDOCK_AIRFLOW_BIN": str(fake),
            "FAKE_STATE": str(tmp_path / "state.json"), "PATH": "/usr/bin:/bin", "AIRFLOW_VERSION": "2.11.0"}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "airdock_runtime.entrypoint", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def _calls(env: dict[str, str]) -> list[list[str]]:
    return json.loads(Path(env["FAKE_STATE"]).read_text())["calls"]


def test_given_airflow2_when_migrate_runs_twice_then_the_admin_user_is_made_once_with_the_secret_password(
        airflow: dict[str, str]) -> None:
    env = {**airflow, "AIRDOCK_ADMIN_PASSWORD": "s3cret-pw"}
    for _ in range(2):
        result = _run(env, "--migrate")
        assert result.returncode == 0, result.stderr
        assert "s3cret-pw" not in result.stdout + result.stderr
    calls = _calls(env)
    assert [c[:2] for c in calls] == [["db", "migrate"], ["users", "list"], ["users", "create"],
                                      ["db", "migrate"], ["users", "list"]]
    create = calls[2]
    assert create[create.index("--username") + 1] == "admin"
    assert create[create.index("--role") + 1] == "Admin"
    assert "--password=s3cret-pw" in create


def test_given_no_admin_password_when_migrate_runs_then_only_the_schema_is_migrated(airflow: dict[str, str]) -> None:
    result = _run(airflow, "--migrate")
    assert result.returncode == 0, result.stderr
    assert _calls(airflow) == [["db", "migrate"]]


def test_given_airflow3_when_migrate_runs_then_no_fab_user_is_made(airflow: dict[str, str]) -> None:
    # Airflow 3 signs users in with JWTs of its auth manager; it has no `airflow users` command.
    env = {**airflow, "AIRFLOW_VERSION": "3.3.2", "AIRDOCK_ADMIN_PASSWORD": "pw"}
    result = _run(env, "--migrate")
    assert result.returncode == 0, result.stderr
    assert _calls(env) == [["db", "migrate"]]


def test_given_a_failing_migration_then_migrate_fails_and_makes_no_user(airflow: dict[str, str]) -> None:
    env = {**airflow, "AIRDOCK_ADMIN_PASSWORD": "pw", "FAKE_MIGRATE_EXIT": "1"}
    result = _run(env, "--migrate")
    assert result.returncode == 3
    assert "db migrate" in result.stderr
    assert _calls(env) == [["db", "migrate"]]


def test_given_a_base_path_the_airflow2_webserver_scopes_its_session_cookie_to_it(
        airflow: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**airflow, "AIRDOCK_WEB_BASE_PATH": "/analytics"}
    result = _run(env, "webserver")
    assert result.returncode == 0, result.stderr
    config = Path(airflow["AIRFLOW_HOME"]) / "webserver_config.py"
    namespace: dict[str, object] = {}
    fab = types.ModuleType("flask_appbuilder.const")
    fab.AUTH_DB = 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flask_appbuilder", types.ModuleType("flask_appbuilder"))
    monkeypatch.setitem(sys.modules, "flask_appbuilder.const", fab)
    exec(compile(config.read_text(), str(config), "exec"), namespace)
    assert namespace["SESSION_COOKIE_PATH"] == "/analytics/"
    # Airflow's own defaults are kept: database auth and CSRF protection.
    assert namespace["AUTH_TYPE"] == namespace["AUTH_DB"] and namespace["WTF_CSRF_ENABLED"] is True


def test_without_a_base_path_airflow_keeps_its_own_webserver_config(airflow: dict[str, str]) -> None:
    assert _run(airflow, "webserver").returncode == 0
    assert not (Path(airflow["AIRFLOW_HOME"]) / "webserver_config.py").exists()


def test_given_a_schema_wait_the_component_starts_once_the_schema_is_its_airflows(airflow: dict[str, str]) -> None:
    env = {**airflow, "AIRDOCK_SCHEMA_WAIT_S": "900"}
    assert _run(env, "scheduler").returncode == 0
    assert _calls(env) == [["db", "check-migrations", "--migration-wait-timeout", "900"], ["scheduler"]]


def test_given_a_schema_that_never_becomes_its_airflows_the_component_never_starts(airflow: dict[str, str]) -> None:
    env = {**airflow, "AIRDOCK_SCHEMA_WAIT_S": "900", "FAKE_SCHEMA_EXIT": "1"}
    result = _run(env, "scheduler")
    assert result.returncode != 0
    assert "not on Airflow 2.11.0's schema after 900 s" in result.stderr
    assert _calls(env) == [["db", "check-migrations", "--migration-wait-timeout", "900"]]


def test_without_a_schema_wait_the_component_starts_at_once(airflow: dict[str, str]) -> None:
    assert _run(airflow, "scheduler").returncode == 0
    assert _calls(airflow) == [["scheduler"]]
