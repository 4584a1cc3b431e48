"""The `airdock` command."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from airdock.core.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from airdock.local.context import LocalContext, control_plane_only
    from airdock.local.server import LocalEndpoint

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        print(f"Refusing to bind {args.host}: pass --allow-remote to expose Airdock beyond this machine.", file=sys.stderr)
        return 2
    provision = not (args.control_plane_only or control_plane_only())
    context = LocalContext(Path(args.data_dir), Settings.from_environ(), provision=provision)
    if not provision:
        print("Control-plane-only mode: the API and state work; environments are not provisioned (they stay CREATING).")
    endpoint = f"http://{args.host}:{args.port}"
    if context.keys.created:
        key = context.keys.root
        print("Airdock generated root credentials (shown once; kept in the credentials file below):")
        print(f"  aws_access_key_id     = {key.access_key_id}")
        print(f"  aws_secret_access_key = {key.secret_access_key}")
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
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on")
    return 0


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
    serve.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO) if hasattr(args, "log_level") else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
