"""Specification of the `airdock` command as a user runs it (a real process, a real server):
where `--data-dir` takes effect, which key `pause`/`resume` sign with, what `serve` says about
credentials, and that bad input gets one clear line and never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.live_server import LiveServer

ROOT_KEY = {"AIRDOCK_ACCESS_KEY_ID": "AKIAROOTFROMENVIRON1", "AIRDOCK_SECRET_ACCESS_KEY": "root-secret-from-the-environment"}
BUCKET = "cli-dags"
NAME = "cli-env"


def airdock(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The user's environment without Airdock's own settings, plus what the test sets.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRDOCK_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "airdock.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, **(env or {})}, timeout=60)


def user_names(data_dir: Path) -> list[str]:
    return [k["UserName"] for k in json.loads((data_dir / "keys.json").read_text())["Keys"]]


@pytest.mark.parametrize("argv", [
    ["keys", "--data-dir", "{D}", "create", "alice"],
    ["--data-dir", "{D}", "keys", "create", "alice"],
    ["keys", "create", "alice", "--data-dir", "{D}"],
], ids=["after-keys", "before-keys", "after-create"])
def test_keys_go_to_the_data_dir_given_wherever_it_is_given(tmp_path: Path, argv: list[str]) -> None:
    # Given a data directory named on the command line at some level, and another in the environment
    data_dir = tmp_path / "D"
    # When a key is created from an unrelated working directory
    out = airdock(*[a.replace("{D}", str(data_dir)) for a in argv], cwd=tmp_path,
                  env={"AIRDOCK_DATA_DIR": str(tmp_path / "from-environment")})
    # Then it is in the named data directory, and nowhere else
    assert out.returncode == 0, out.stderr
    assert user_names(data_dir) == ["alice"]
    assert not (tmp_path / ".airdock").exists() and not (tmp_path / "from-environment").exists()
    listing = airdock("keys", "--data-dir", str(data_dir), "list", "--json", cwd=tmp_path)
    assert [k["UserName"] for k in json.loads(listing.stdout)] == ["alice"]


def test_without_a_data_dir_option_the_environment_then_dot_airdock_decide(tmp_path: Path) -> None:
    assert airdock("keys", "create", "bob", cwd=tmp_path, env={"AIRDOCK_DATA_DIR": str(tmp_path / "E")}).returncode == 0
    assert airdock("keys", "create", "carol", cwd=tmp_path).returncode == 0
    assert user_names(tmp_path / "E") == ["bob"] and user_names(tmp_path / ".airdock") == ["carol"]


# ---------------------------------------------------------------- the root key from the environment


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("cli") / "data", env=dict(ROOT_KEY)).start()
    (live.bucket(BUCKET) / "dags").mkdir(parents=True, exist_ok=True)
    live.client().create_environment(
        Name=NAME, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
        DagS3Path="dags", NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})
    yield live
    live.stop()


def test_serve_names_where_the_root_key_comes_from_and_no_file_it_did_not_write(server: LiveServer) -> None:
    assert not (server.data_dir / "credentials").exists()
    log = server.log()
    assert "Credentials file" not in log and "credentials" not in log.replace("Root credentials", "")
    assert f"Root credentials: {ROOT_KEY['AIRDOCK_ACCESS_KEY_ID']} from AIRDOCK_ACCESS_KEY_ID" in log
    assert ROOT_KEY["AIRDOCK_SECRET_ACCESS_KEY"] not in log


def test_pause_and_resume_sign_with_the_root_key_from_the_environment(server: LiveServer, tmp_path: Path) -> None:
    # Given the root key in the environment, as the server has it, and no credentials file anywhere
    # When pause and resume are asked of the server (the environment stays CREATING: no Airflow here)
    pause = airdock("pause", NAME, "--endpoint-url", server.endpoint, cwd=tmp_path, env=ROOT_KEY)
    resume = airdock("resume", NAME, "--endpoint-url", server.endpoint, cwd=tmp_path, env=ROOT_KEY)
    # Then the server accepted the signature and answered about the environment itself
    assert pause.returncode == 1 and "only an AVAILABLE or UNAVAILABLE environment can be paused" in pause.stderr
    assert resume.returncode == 1 and "only a paused (PENDING) environment can be resumed" in resume.stderr
    # And a key the server does not know is refused by the server, not by the command
    wrong = airdock("pause", NAME, "--endpoint-url", server.endpoint, cwd=tmp_path,
                    env={**ROOT_KEY, "AIRDOCK_SECRET_ACCESS_KEY": "not-the-secret"})
    assert wrong.returncode == 1 and "403" in wrong.stderr


def test_pause_without_any_key_says_where_it_looked(server: LiveServer, tmp_path: Path) -> None:
    out = airdock("pause", NAME, "--endpoint-url", server.endpoint, "--data-dir", str(tmp_path / "D"), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"No credentials for profile airdock in {tmp_path / 'D' / 'credentials'}" in out.stderr
    assert "AIRDOCK_ACCESS_KEY_ID" in out.stderr


# ---------------------------------------------------------------- bad input


def broken_keys_file(tmp_path: Path) -> None:
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "keys.json").write_text('{"Keys": [')


def not_a_database(tmp_path: Path) -> None:
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "state.db").write_text("not a database")


def a_file(tmp_path: Path) -> None:
    (tmp_path / "D").write_text("a file")


def torn_event_line(tmp_path: Path) -> None:
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "events.jsonl").write_text(
        '{"time": "2026-01-01T00:00:00Z", "detail": {"EnvironmentName": "e", "Status": "CREATING"}}\n{"time": "20')


BAD_INPUT = {
    # name: (set-up, argv, environment, what stderr must say)
    "data dir is a file": (a_file, ["keys", "create", "x", "--data-dir", "{D}"], {}, "is not a directory"),
    "port from the environment": (None, ["serve", "--data-dir", "{D}"], {"AIRDOCK_PORT": "eighty"},
                                  "AIRDOCK_PORT: Input should be a valid integer, unable to parse string as an integer (got 'eighty')"),
    "port out of range": (None, ["serve", "--port", "70000", "--data-dir", "{D}"], {}, "got '70000'"),
    "account id": (None, ["keys", "list", "--data-dir", "{D}"], {"AIRDOCK_ACCOUNT_ID": "abc"}, "AIRDOCK_ACCOUNT_ID: String should match pattern"),
    "broken keys file": (broken_keys_file, ["keys", "create", "x", "--data-dir", "{D}"], {},
                         "is not valid JSON"),
    "missing policy file": (None, ["keys", "create", "x", "--policy", "nope.json", "--data-dir", "{D}"], {},
                            "Cannot read the policy nope.json"),
    "state.db not a database": (not_a_database, ["metrics", "e", "--data-dir", "{D}"], {}, "file is not a database"),
    "endpoint not a URL": (None, ["pause", "e", "--endpoint-url", "localhost:8787", "--data-dir", "{D}"], ROOT_KEY,
                           "--endpoint-url must be an http:// or https:// URL"),
    "endpoint port not a number": (None, ["pause", "e", "--endpoint-url", "http://127.0.0.1:port", "--data-dir", "{D}"],
                                   ROOT_KEY, "Invalid --endpoint-url"),
    "limit below one": (None, ["events", "--limit", "0", "--data-dir", "{D}"], {}, "at least 1"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_one_clear_message_and_no_traceback(tmp_path: Path, case: str) -> None:
    set_up, argv, env, message = BAD_INPUT[case]
    if set_up is not None:
        set_up(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    out = airdock(*[a.replace("{D}", str(tmp_path / "D")) for a in argv], cwd=tmp_path, env=env)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and message in out.stderr, out.stderr
    # Nothing the user had was changed or removed
    assert {p: p.read_bytes() for p in before} == before


def test_a_torn_last_event_does_not_hide_the_others(tmp_path: Path) -> None:
    # Given an event log whose last append was cut off (a crash or a power loss)
    torn_event_line(tmp_path)
    # Then the events before it are shown
    out = airdock("events", "--data-dir", str(tmp_path / "D"), cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert out.stdout.split() == ["2026-01-01T00:00:00Z", "e", "CREATING"]
