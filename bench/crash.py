"""Crash recovery, long run: SIGKILL `airdock serve` at seeded random points of creates, updates
and deletes of real Airflow environments; after each restart the change must complete with the
requested configuration (tests/support/crash.py has the checks).

    .venv/bin/python bench/crash.py [--runs 21] [--seed 7]

Runs cycle create → update → delete on one environment (each a separately killed run), so
--runs 21 is 7 full cycles. Last line: `crash: runs N, recovered R, failed F`.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "layers" / "core"))

from airdock.local.sample import EXAMPLE_DAG  # noqa: E402
from support.crash import Crasher, prepare_bucket  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    recovered = failed = 0
    with tempfile.TemporaryDirectory(prefix="airdock-crash-") as tmp:
        crasher = Crasher(Path(tmp) / "data", rng, env={"AIRDOCK_AUTOSCALER": "off"})
        prepare_bucket(crasher.server, EXAMPLE_DAG)
        cycle = 0
        try:
            for index in range(args.runs):
                name = f"crash-{cycle}"
                step = ("create", "update", "delete")[index % 3]
                try:
                    if step == "create":
                        # Kill anywhere from the API call to well into migration/start-up.
                        run = crasher.create(name, max_delay=60.0)
                    elif step == "update":
                        run = crasher.update(name, max_delay=8.0)
                    else:
                        run = crasher.delete(name, max_delay=6.0)
                        cycle += 1
                    recovered += 1
                    print(f"run {index + 1:>2}: {run.line()}", flush=True)
                except Exception:
                    failed += 1
                    print(f"run {index + 1:>2}: {step} {name} FAILED\n{traceback.format_exc()}", flush=True)
                    if step != "delete":  # start the next cycle on a fresh name
                        cycle += 1
        finally:
            crasher.stop()
    print(f"crash: runs {recovered + failed}, recovered {recovered}, failed {failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
