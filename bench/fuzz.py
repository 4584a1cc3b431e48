"""API fuzzing benchmark: schemathesis against a live control-plane-only `airdock serve`.

    .venv/bin/python bench/fuzz.py [--examples N] [--seed S]

Generates positive and negative requests for every operation of /_airdock/openapi.json (N per
operation and mode; the default reaches ≥ 10 000 requests), signs each with SigV4 and checks the
responses against the schema; then checks that every stored environment is consistent. Last line:
`fuzz: requests N, 5xx 0, schema violations 0, inconsistent 0`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import fuzz  # noqa: E402
from support.live_server import LiveServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=400, help="examples per operation and generation mode")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="airdock-fuzz-") as tmp:
        server = LiveServer(Path(tmp) / "data", env={"AIRDOCK_AUTOSCALER": "off"}).start()
        try:
            fuzz.seed_state(server)
            report = fuzz.run(server, examples_per_operation=args.examples, seed=args.seed)
        finally:
            server.stop()
    for example in report.examples:
        print("---", example)
    if report.skipped:
        print("no cases could be generated for:", ", ".join(report.skipped))
    print(f"statuses: {dict(sorted(report.statuses.items()))}; {report.seconds:.0f} s, "
          f"{report.requests / max(report.seconds, 1e-9):.0f} req/s")
    print(report.line())
    return 0 if report.server_errors == report.schema_violations == report.inconsistent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
