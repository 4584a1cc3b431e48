"""The `airdock` command."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import ValidationError as PydanticValidationError

from airdock.core.settings import Settings

if TYPE_CHECKING:
    from botocore.credentials import Credentials


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from airdock.local.context import LocalContext
    from airdock.local.server import LocalEndpoint

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        print(f"Refusing to bind {args.host}: pass --allow-remote to expose Airdock beyond this machine.", file=sys.stderr)
        return 2
    provision = not (args.control_plane_only or args.settings.control_plane_only)
    context = LocalContext(Path(args.data_dir), args.settings, provision=provision, group_commit=True)
    if not provision:
        print("Control-plane-only mode: the API and state work; environments are not provisioned (they stay CREATING).")
    endpoint = f"http://{args.host}:{args.port}"
    if context.keys.created:
        key = context.keys.root
        if sys.stdout.isatty():
            print("Airdock generated root credentials (shown once; kept in the credentials file below):")
            print(f"  aws_access_key_id     = {key.access_key_id}")
            print(f"  aws_secret_access_key = {key.secret_access_key}")
        else:
            # stdout is a file or a pipe (a service log): secrets never go to logs.
            print(f"Airdock generated root credentials {key.access_key_id} (secret in the credentials file below).")
    print(f"Endpoint: {endpoint}   (export AWS_DISABLE_HOST_PREFIX_INJECTION=true)")
    if context.keys.from_environment:
        # No credentials file is written for a key given in the environment: name where it is.
        print(f"Root credentials: {context.keys.root.access_key_id} from AIRDOCK_ACCESS_KEY_ID / AIRDOCK_SECRET_ACCESS_KEY")
        print("  AWS_ACCESS_KEY_ID=$AIRDOCK_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AIRDOCK_SECRET_ACCESS_KEY "
              f"aws mwaa list-environments --region {context.settings.region} --endpoint-url {endpoint}", flush=True)
    else:
        print(f"Credentials file: {context.keys.path} (profile airdock)")
        print(f"  AWS_SHARED_CREDENTIALS_FILE={context.keys.path} aws mwaa list-environments --profile airdock "
              f"--region {context.settings.region} --endpoint-url {endpoint}", flush=True)
    if context.certificate_authority is not None:
        bundle = context.certificate_authority.bundle
        print(f"Web fronts: https:// and http:// on each environment's port; HTTPS certificates from the local CA {bundle}")
        print(f"  REQUESTS_CA_BUNDLE={bundle} AWS_CA_BUNDLE={bundle} (clients that call https://{{WebServerHostname}})",
              flush=True)
    elif context.settings.web_tls_cert:
        print(f"Web fronts: https:// with the certificate {context.settings.web_tls_cert}", flush=True)
    if args.sample:
        from airdock.local.sample import seed_sample

        seed_sample(context)
    app = LocalEndpoint(context)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; a requested
    # stop is a success, so the re-raised signal ends the process with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    from airdock.local.http_transport import bounded_http_protocol

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
                http=bounded_http_protocol(), access_log=args.access_log)
    return 0


# ---- lifecycle and observability commands (issue 8) -------------------------------------------
# pause/resume go through the signed API of a running server, like any client; events, logs and
# metrics read the data directory (they are the local stand-ins for EventBridge, CloudWatch Logs
# and CloudWatch metrics, which are not part of the MWAA API either).


class CliError(Exception):
    """Bad input or an unusable setting: printed as one line, exit status 2, no traceback."""


def _root_credentials(args: argparse.Namespace) -> Credentials:
    """The key pause/resume sign with: a --profile if one is named; else the root key from
    AIRDOCK_ACCESS_KEY_ID / AIRDOCK_SECRET_ACCESS_KEY, as the server reads it; else the server's
    generated credentials file (profile airdock)."""
    from botocore.credentials import Credentials
    from botocore.exceptions import BotoCoreError
    from botocore.session import Session

    from airdock.local.credentials import PROFILE

    settings: Settings = args.settings
    if args.profile is None and settings.access_key_id and settings.secret_access_key:
        return Credentials(settings.access_key_id, settings.secret_access_key)
    profile = args.profile or PROFILE
    credentials_file = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path(args.data_dir) / "credentials")
    session = Session(profile=profile)
    session.set_config_variable("credentials_file", credentials_file)
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # ProfileNotFound, a malformed file, ...
        credentials = None
        detail = f" ({exc})"
    else:
        detail = ""
    if credentials is None:
        raise CliError(f"No credentials for profile {profile} in {credentials_file}{detail}. Set AIRDOCK_ACCESS_KEY_ID and "
                       "AIRDOCK_SECRET_ACCESS_KEY as for `airdock serve`, or pass the server's --data-dir or a --profile.")
    return credentials.get_frozen_credentials()


def _endpoint(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"--endpoint-url must be an http:// or https:// URL, not {url!r}.")
    try:
        parts.port
    except ValueError as exc:
        raise CliError(f"Invalid --endpoint-url {url!r}: {exc}.") from None
    return url.rstrip("/")


def _signed_post(args: argparse.Namespace, path: str) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = _endpoint(args.endpoint_url) + path
    request = AWSRequest(method="POST", url=url, data=b"", headers={"Content-Type": "application/json"})
    SigV4Auth(_root_credentials(args), "airflow", args.region).add_auth(request)
    prepared = urllib.request.Request(url, data=b"", method="POST", headers=dict(request.headers.items()))

    def decoded(raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {"message": raw.decode("utf-8", "replace")[:500]}

    try:
        with urllib.request.urlopen(prepared, timeout=60) as response:
            return response.status, decoded(response.read())
    except urllib.error.HTTPError as error:
        return error.code, decoded(error.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(f"Cannot reach Airdock at {args.endpoint_url}: {reason} (is `airdock serve` running?)") from None


def _lifecycle_command(operation: str) -> "Callable[[argparse.Namespace], int]":
    def run(args: argparse.Namespace) -> int:
        from urllib.parse import quote

        code, body = _signed_post(args, f"/environments/{quote(args.name, safe='')}/{operation}")
        if code != 200:
            print(f"{operation} failed ({code}): {body.get('message') or body.get('Message') or body}", file=sys.stderr)
            return 1
        print(f"{args.name}: {operation} requested; status {body.get('Status')}"
              f" ({'AVAILABLE when Airflow is healthy again' if operation == 'resume' else 'PENDING = paused'})")
        return 0

    return run


def _format_event(event: dict) -> str:
    detail = event.get("detail") or {}
    previous = detail.get("PreviousStatus")
    change = f"{previous} -> {detail.get('Status')}" if previous else str(detail.get("Status"))
    error = detail.get("Error")
    return f"{event.get('time')}  {detail.get('EnvironmentName')}  {change}" + (f"  {error}" if error else "")


def _events(args: argparse.Namespace) -> int:
    import json
    import time

    from airdock.local.events import LocalEventLog, parse_line

    log_file = LocalEventLog(Path(args.data_dir) / "events.jsonl")
    show = (lambda e: print(json.dumps(e), flush=True)) if args.json else (lambda e: print(_format_event(e), flush=True))
    for event in log_file.read(args.name, limit=args.limit):
        show(event)
    if not args.follow:
        return 0
    offset = log_file.path.stat().st_size if log_file.path.exists() else 0
    try:
        while True:
            time.sleep(0.5)
            if not log_file.path.exists():
                continue
            with open(log_file.path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            offset += end
            for line in data[:end].decode("utf-8", "replace").splitlines():
                event = parse_line(line)
                if event is None:
                    continue
                if args.name is None or (event.get("detail") or {}).get("EnvironmentName") == args.name:
                    show(event)
    except KeyboardInterrupt:
        return 0


def _repository(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from airdock.local.sqlite_repository import SqliteEnvironmentRepository

    path = Path(args.data_dir) / "state.db"
    if not path.exists():
        raise SystemExit(f"No Airdock data in {args.data_dir} (pass --data-dir).")
    return SqliteEnvironmentRepository(path)


def _logs(args: argparse.Namespace) -> int:
    from airdock.core.logs import enabled_modules, log_group_name, module_for
    from airdock.local.logs import LocalLogs

    try:
        module = module_for(args.module)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    record = _repository(args).get(args.name)
    if record is None:
        print(f"Environment {args.name} not found.", file=sys.stderr)
        return 1
    modules = enabled_modules(record.environment)
    if module not in modules:
        print(f"{module} logs are not enabled for {args.name}: enable them with UpdateEnvironment "
              f"LoggingConfiguration (like MWAA, only enabled modules are kept).", file=sys.stderr)
        return 1
    logs = LocalLogs(Path(args.data_dir) / "envs")
    logs.route(args.name, modules)  # pick up what the server's router has not copied yet
    print(f"# {log_group_name(args.name, module)} (level {modules[module]}+): {logs.module_file(args.name, module)}",
          file=sys.stderr)
    for event in logs.read(args.name, module, limit=args.limit):
        print(f"{event.stream} {event.level} {event.message}", flush=True)
    if args.follow:
        try:
            for event in logs.follow(args.name, module, modules=modules):
                print(f"{event.stream} {event.level} {event.message}", flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


def _workflow_logs(args: argparse.Namespace) -> int:
    """A workflow run's task logs, read from the data dir (the local CloudWatch log streams)."""
    from airdock.core.ports import Caller
    from airdock.core.serverless.errors import NotFoundError
    from airdock.local.serverless.context import ServerlessContext

    data_dir = Path(args.data_dir)
    if not (data_dir / "serverless" / "state.db").is_file():
        print(f"No MWAA Serverless workflows in {data_dir}.", file=sys.stderr)
        return 1
    context = ServerlessContext(data_dir, args.settings, buckets=None, events=None,
                                policies=lambda caller: None, provision=True)
    service = context.service
    workflow = context.repository.find_workflow(name=args.name)
    if workflow is None:
        print(f"Workflow {args.name} not found.", file=sys.stderr)
        return 1
    run = context.repository.get_run(workflow.workflow_id, args.run_id)
    if run is None:
        print(f"Run {args.run_id} of {args.name} not found.", file=sys.stderr)
        return 1
    for task in run.tasks:
        if args.task and task.task_id != args.task:
            continue
        attempts = [args.attempt] if args.attempt else list(range(1, max(task.attempt, 1) + 1))
        for attempt in attempts:
            try:
                log = service.task_log(workflow.arn, run.run_id, task.task_id, attempt, Caller())
            except NotFoundError as exc:
                print(exc.message, file=sys.stderr)
                return 1
            print(f"# {log['LogGroup']} {log['LogStream']}", flush=True)
            for event in log["Events"]:
                print(f"{event.get('timestamp') or ''} {str(event.get('level', '')).upper()} {event['message']}",
                      flush=True)
    return 0


def _metrics(args: argparse.Namespace) -> int:
    import json
    import time
    from datetime import datetime, timezone

    from airdock.local.metrics_store import SqliteMetrics

    repository = _repository(args)
    if repository.get(args.name) is None:
        print(f"Environment {args.name} not found.", file=sys.stderr)
        return 1
    store = SqliteMetrics(db=repository.db)
    since = time.time() - args.minutes * 60
    rows = []
    for name in store.names(args.name):
        points = store.query(args.name, name, since)
        if points:
            last = points[-1]
            rows.append({"MetricName": name, "Latest": last.value, "Unit": last.unit, "Points": len(points),
                         "Timestamp": datetime.fromtimestamp(last.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "Dimensions": last.dimensions})
    if args.json:
        print(json.dumps({"Environment": args.name, "Metrics": rows}, indent=1))
        return 0
    if not rows:
        print(f"No metrics for {args.name} in the last {args.minutes} minutes.")
        return 0
    print(f"{'METRIC':<22} {'LATEST':>12} {'UNIT':<9} {'POINTS':>6}  TIME (UTC)            DIMENSIONS")
    for row in rows:
        dims = ",".join(f"{k}={v}" for k, v in sorted(row["Dimensions"].items()))
        print(f"{row['MetricName']:<22} {row['Latest']:>12g} {row['Unit']:<9} {row['Points']:>6}  {row['Timestamp']}  {dims}")
    return 0


# ---- access keys (issue 10) ---------------------------------------------------------------------
# Edits <data-dir>/keys.json directly: works with or without a running server, which picks the
# change up on its next request. The secret is printed once, here, and nowhere else.


def _keys(args: argparse.Namespace) -> int:
    import json

    from airdock.core.errors import ValidationError
    from airdock.local.keys import KeysFile

    store = KeysFile(Path(args.data_dir), args.settings.account_id)
    if args.keys_command == "create":
        document = None
        if args.policy:
            try:
                document = json.loads(Path(args.policy).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                print(f"Cannot read the policy {args.policy}: {exc}", file=sys.stderr)
                return 2
        try:
            key = store.create(args.name, document)
        except ValidationError as exc:
            print(exc.message, file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key,
                              "UserName": key.user_name, "Arn": key.principal_arn}))
        else:
            print(f"Created access key for {key.principal_arn} (the secret is shown only now):")
            print(f"  aws_access_key_id     = {key.access_key_id}")
            print(f"  aws_secret_access_key = {key.secret_access_key}")
            if key.policy is None:
                print("  no policy: this key is denied every operation until it gets one (create a new key with --policy)")
        return 0
    if args.keys_command == "list":
        keys = [k.public() for k in store.list()]
        if args.json:
            print(json.dumps(keys, indent=1))
            return 0
        print(f"{'ACCESS KEY ID':<22} {'USER':<20} {'CREATED':<21} POLICY")
        for k in keys:
            statements = len((k["Policy"] or {}).get("Statement", []))
            print(f"{k['AccessKeyId']:<22} {k['UserName']:<20} {k['CreateDate']:<21} "
                  f"{f'{statements} statement(s)' if k['Policy'] else 'none (denied everything)'}")
        return 0
    try:
        deleted = store.delete(args.key_id)
    except ValidationError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if deleted:
        print(f"Deleted access key {args.key_id}.")
        return 0
    print(f"No access key {args.key_id} in {store.path}.", file=sys.stderr)
    return 1


def _add_client_options(parser: argparse.ArgumentParser, settings: Settings) -> None:
    parser.add_argument("--endpoint-url", default=settings.endpoint_url or f"http://127.0.0.1:{settings.port}")
    parser.add_argument("--profile", help="a profile of the credentials file (default: the root key from "
                                          "AIRDOCK_ACCESS_KEY_ID/AIRDOCK_SECRET_ACCESS_KEY, else profile airdock)")
    parser.add_argument("--region", default=settings.region)


def _add_data_dir(parser: argparse.ArgumentParser, help: str = "Airdock's data directory") -> None:
    # SUPPRESS, and the default applied once after parsing: argparse copies every attribute of a
    # subcommand's namespace over its parent's, so a subcommand's own default would override a
    # --data-dir given before the subcommand (`airdock keys --data-dir D create`).
    parser.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help=f"{help} (default: $AIRDOCK_DATA_DIR, else ./.airdock)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port number from 1 to 65535, got {text!r}")
    return port


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings()  # read once, here: every default below and every command uses it
    except PydanticValidationError as exc:
        problems = "; ".join(f"AIRDOCK_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        print(f"airdock: invalid setting in the environment: {problems}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="airdock", description="Self-hostable Amazon MWAA.")
    _add_data_dir(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local MWAA endpoint")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=_port, default=settings.port, help="(default: $AIRDOCK_PORT, else 8787)")
    _add_data_dir(serve)
    serve.add_argument("--sample", action="store_true", help="seed a sample bucket and environment")
    serve.add_argument("--control-plane-only", action="store_true",
                       help="serve the API and keep state, but provision no Airflow (for testing API clients)")
    serve.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    # Off by default: a formatted line and a write(2) per request, on the event loop every request waits for.
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request (uvicorn's access log)")
    serve.set_defaults(run=_serve)
    for operation, text in (("pause", "stop every component of an environment (status PENDING), keeping its history"),
                            ("resume", "start a paused environment again")):
        command = commands.add_parser(operation, help=text)
        command.add_argument("name")
        _add_data_dir(command, "where the server's credentials file is")
        _add_client_options(command, settings)
        command.set_defaults(run=_lifecycle_command(operation))
    events = commands.add_parser("events", help="status-change events (the local EventBridge)")
    events.add_argument("name", nargs="?")
    events.add_argument("--follow", "-f", action="store_true")
    events.add_argument("--json", action="store_true", help="print the events as JSON (EventBridge shape)")
    events.add_argument("--limit", type=_count, default=100)
    _add_data_dir(events)
    events.set_defaults(run=_events)
    logs = commands.add_parser("logs", help="an environment's logs by module (the local CloudWatch log groups)")
    logs.add_argument("name")
    logs.add_argument("--module", "-m", default="Task", help="DAGProcessing | Scheduler | Task | WebServer | Worker")
    logs.add_argument("--follow", "-f", action="store_true")
    logs.add_argument("--limit", type=_count, default=100)
    _add_data_dir(logs)
    logs.set_defaults(run=_logs)
    workflow_logs = commands.add_parser("workflow-logs", help="an MWAA Serverless run's task logs, per attempt")
    workflow_logs.add_argument("name", help="the workflow's name")
    workflow_logs.add_argument("run_id")
    workflow_logs.add_argument("--task", help="one task id (default: every task)")
    workflow_logs.add_argument("--attempt", type=int, help="one attempt (default: every attempt)")
    _add_data_dir(workflow_logs)
    workflow_logs.set_defaults(run=_workflow_logs)
    metrics = commands.add_parser("metrics", help="an environment's metrics (the local CloudWatch AmazonMWAA)")
    metrics.add_argument("name")
    metrics.add_argument("--minutes", type=float, default=60.0, help="look back this many minutes")
    metrics.add_argument("--json", action="store_true")
    _add_data_dir(metrics)
    metrics.set_defaults(run=_metrics)
    keys = commands.add_parser("keys", help="access keys with IAM-style policies (keys.json in the data dir)")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create an access key for a named user")
    create.add_argument("name", help="user name; the key signs as arn:aws:iam::ACCOUNT:user/NAME")
    create.add_argument("--policy", help="IAM policy JSON file (Allow/Deny on airflow:* actions); none = deny all")
    create.add_argument("--json", action="store_true")
    listing = keys_commands.add_parser("list", help="list access keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    delete = keys_commands.add_parser("delete", help="delete an access key")
    delete.add_argument("key_id")
    for command in (keys, create, listing, delete):
        _add_data_dir(command)
    keys.set_defaults(run=_keys)
    args = parser.parse_args(argv)
    args.settings = settings
    args.data_dir = getattr(args, "data_dir", None) or str(settings.data_dir)
    if os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        parser.error(f"the data directory {args.data_dir} is not a directory")
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO) if hasattr(args, "log_level") else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"airdock {args.command}: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"airdock {args.command}: cannot use {Path(args.data_dir) / 'state.db'}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `airdock keys list | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a data directory that cannot be written, ...
        print(f"airdock {args.command}: {exc.strerror or exc}: {exc.filename or args.data_dir}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
