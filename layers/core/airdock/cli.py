"""The `airdock` command."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from airdock.core.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from airdock.local.context import LocalContext, control_plane_only
    from airdock.local.server import LocalEndpoint

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        print(f"Refusing to bind {args.host}: pass --allow-remote to expose Airdock beyond this machine.", file=sys.stderr)
        return 2
    provision = not (args.control_plane_only or control_plane_only())
    context = LocalContext(Path(args.data_dir), Settings.from_environ(), provision=provision, group_commit=True)
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
    print(f"Credentials file: {context.keys.path} (profile airdock)")
    print(f"Endpoint: {endpoint}   (export AWS_DISABLE_HOST_PREFIX_INJECTION=true)")
    print(f"  AWS_SHARED_CREDENTIALS_FILE={context.keys.path} aws mwaa list-environments --profile airdock "
          f"--region {context.settings.region} --endpoint-url {endpoint}", flush=True)
    if args.sample:
        from airdock.local.sample import seed_sample

        seed_sample(context)
    app = LocalEndpoint(context)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; a requested
    # stop is a success, so the re-raised signal ends the process with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    from airdock.local.server import bounded_http_protocol

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
                http=bounded_http_protocol(), access_log=args.access_log)
    return 0


# ---- lifecycle and observability commands (issue 8) -------------------------------------------
# pause/resume go through the signed API of a running server, like any client; events, logs and
# metrics read the data directory (they are the local stand-ins for EventBridge, CloudWatch Logs
# and CloudWatch metrics, which are not part of the MWAA API either).


def _signed_post(args: argparse.Namespace, path: str) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials_file = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path(args.data_dir) / "credentials")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = credentials_file
    session = boto3.Session(profile_name=args.profile)
    credentials = session.get_credentials()
    if credentials is None:
        raise SystemExit(f"No credentials for profile {args.profile} in {credentials_file}.")
    url = args.endpoint_url.rstrip("/") + path
    request = AWSRequest(method="POST", url=url, data=b"", headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "airflow", args.region).add_auth(request)
    prepared = urllib.request.Request(url, data=b"", method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except urllib.error.URLError as error:
        raise SystemExit(f"Cannot reach Airdock at {args.endpoint_url}: {error.reason} (is `airdock serve` running?)")


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

    from airdock.local.events import LocalEventLog

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
            for line in data[:end].decode().splitlines():
                event = json.loads(line)
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

    store = KeysFile(Path(args.data_dir), Settings.from_environ().account_id)
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
    if store.delete(args.key_id):
        print(f"Deleted access key {args.key_id}.")
        return 0
    print(f"No access key {args.key_id} in {store.path}.", file=sys.stderr)
    return 1


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", default=os.environ.get(
        "AIRDOCK_ENDPOINT_URL", f"http://127.0.0.1:{os.environ.get('AIRDOCK_PORT', '8787')}"))
    parser.add_argument("--profile", default="airdock")
    parser.add_argument("--region", default=os.environ.get("AIRDOCK_REGION", os.environ.get("AWS_REGION", "us-east-1")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airdock", description="Self-hostable Amazon MWAA.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local MWAA endpoint")
    serve.add_argument("--host", default=os.environ.get("AIRDOCK_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("AIRDOCK_PORT", "8787")))
    serve.add_argument("--data-dir", default=os.environ.get("AIRDOCK_DATA_DIR", ".airdock"))
    serve.add_argument("--sample", action="store_true", help="seed a sample bucket and environment")
    serve.add_argument("--control-plane-only", action="store_true",
                       help="serve the API and keep state, but provision no Airflow (for testing API clients)")
    serve.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    # Off by default: a formatted line and a write(2) per request, on the event loop every request waits for.
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request (uvicorn's access log)")
    serve.set_defaults(run=_serve)
    data_dir_default = os.environ.get("AIRDOCK_DATA_DIR", ".airdock")
    for operation, text in (("pause", "stop every component of an environment (status PENDING), keeping its history"),
                            ("resume", "start a paused environment again")):
        command = commands.add_parser(operation, help=text)
        command.add_argument("name")
        command.add_argument("--data-dir", default=data_dir_default, help="where the credentials file is")
        _add_client_options(command)
        command.set_defaults(run=_lifecycle_command(operation))
    events = commands.add_parser("events", help="status-change events (the local EventBridge)")
    events.add_argument("name", nargs="?")
    events.add_argument("--follow", "-f", action="store_true")
    events.add_argument("--json", action="store_true", help="print the events as JSON (EventBridge shape)")
    events.add_argument("--limit", type=int, default=100)
    events.add_argument("--data-dir", default=data_dir_default)
    events.set_defaults(run=_events)
    logs = commands.add_parser("logs", help="an environment's logs by module (the local CloudWatch log groups)")
    logs.add_argument("name")
    logs.add_argument("--module", "-m", default="Task", help="DAGProcessing | Scheduler | Task | WebServer | Worker")
    logs.add_argument("--follow", "-f", action="store_true")
    logs.add_argument("--limit", type=int, default=100)
    logs.add_argument("--data-dir", default=data_dir_default)
    logs.set_defaults(run=_logs)
    metrics = commands.add_parser("metrics", help="an environment's metrics (the local CloudWatch AmazonMWAA)")
    metrics.add_argument("name")
    metrics.add_argument("--minutes", type=float, default=60.0, help="look back this many minutes")
    metrics.add_argument("--json", action="store_true")
    metrics.add_argument("--data-dir", default=data_dir_default)
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
        command.add_argument("--data-dir", default=data_dir_default)
    keys.set_defaults(run=_keys)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO) if hasattr(args, "log_level") else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
