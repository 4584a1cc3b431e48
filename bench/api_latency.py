"""API latency of a live `airdock serve` beside a moto-server DynamoDB round trip, in one run.

What it does:
1. Stores 1,000 environments in a fresh data directory (through EnvironmentService on the SQLite
   repository, before the server starts: the same records CreateEnvironment writes).
2. Starts `airdock serve` on it (tests/support/live_server.py) and, through boto3, times
   GetEnvironment (random names) and ListEnvironments (MaxResults 25, first and later pages).
3. Starts `moto.server.ThreadedMotoServer` on a free port and times DynamoDB GetItem through boto3,
   as many calls as GetEnvironment and ListEnvironments together.

The last line is `api: p50 X ms, p99 Y ms, moto p50 Z ms, ratio R` where X and Y are the p50/p99
of GetEnvironment and ListEnvironments calls COMBINED (one sample set), Z the GetItem p50 and
R = X / Z. Target: R <= 1.0.

Usage: .venv/bin/python bench/api_latency.py [--calls 300] [--environments 1000]
"""
from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "layers" / "core"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from support.live_server import LiveServer, free_port  # noqa: E402

BUCKET = "bench-dags"


def seed(data_dir: Path, count: int) -> list[str]:
    from airdock.core.models import CreateEnvironmentInput
    from airdock.core.ports import NullEvents
    from airdock.core.service import EnvironmentService
    from airdock.core.settings import Settings
    from airdock.local.buckets import LocalBuckets
    from airdock.local.sqlite_repository import SqliteEnvironmentRepository

    (data_dir / "buckets" / BUCKET / "dags").mkdir(parents=True)
    repository = SqliteEnvironmentRepository(data_dir / "state.db")
    service = EnvironmentService(repository, LocalBuckets(data_dir / "buckets"), NullEvents(), Settings())
    names = [f"bench-{i:04d}" for i in range(count)]
    for name in names:
        service.create_environment(CreateEnvironmentInput.model_validate({
            "Name": name,
            "ExecutionRoleArn": "arn:aws:iam::000000000000:role/bench",
            "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
            "DagS3Path": "dags",
            "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
            "Tags": {"bench": "yes", "index": name[-4:]},
            "AirflowConfigurationOptions": {"core.parallelism": "8"},
        }))
    repository.close()
    return names


def timed(call: Callable[[], Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100.0 * len(ordered)) - 1))]


def describe(label: str, samples: list[float]) -> str:
    return (f"{label:<28} n={len(samples):4d}  p50 {pct(samples, 50):6.2f} ms  p90 {pct(samples, 90):6.2f} ms  "
            f"p99 {pct(samples, 99):6.2f} ms  mean {statistics.fmean(samples):6.2f} ms")


def bench_api(names: list[str], data_dir: Path, calls: int) -> tuple[list[float], list[float]]:
    server = LiveServer(data_dir).start()
    try:
        client = server.client()
        rng = random.Random(7)
        tokens: list[str | None] = [None]
        page = client.list_environments(MaxResults=25)
        while "NextToken" in page and len(tokens) < 10:
            tokens.append(page["NextToken"])
            page = client.list_environments(MaxResults=25, NextToken=page["NextToken"])
        for _ in range(30):  # warm up connection pools, caches, the JIT-less interpreter's imports
            client.get_environment(Name=rng.choice(names))
            client.list_environments(MaxResults=25)

        def get() -> None:
            client.get_environment(Name=rng.choice(names))

        def lst() -> None:
            token = rng.choice(tokens)
            client.list_environments(MaxResults=25, **({"NextToken": token} if token else {}))

        return timed(get, calls), timed(lst, calls)
    finally:
        server.stop()


def bench_moto(calls: int, items: int) -> list[float]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per call otherwise
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=Config(retries={"max_attempts": 1}))
        client.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}])
        for i in range(items):
            client.put_item(TableName="bench", Item={"name": {"S": f"bench-{i:04d}"}, "doc": {"S": "x" * 2000}})
        rng = random.Random(7)

        def get() -> None:
            client.get_item(TableName="bench", Key={"name": {"S": f"bench-{rng.randrange(items):04d}"}})

        for _ in range(30):
            get()
        return timed(get, calls)
    finally:
        moto.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per API operation")
    parser.add_argument("--environments", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="airdock-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        names = seed(data_dir, args.environments)
        print(f"seeded {len(names)} environments in {time.perf_counter() - started:.1f} s")
        get, lst = bench_api(names, data_dir, args.calls)
    moto = bench_moto(2 * args.calls, 200)
    api = get + lst
    print(describe("airdock GetEnvironment", get))
    print(describe("airdock ListEnvironments", lst))
    print(describe("airdock combined", api))
    print(describe("moto DynamoDB GetItem", moto))
    p50, p99, moto_p50 = pct(api, 50), pct(api, 99), pct(moto, 50)
    print(f"api: p50 {p50:.2f} ms, p99 {p99:.2f} ms, moto p50 {moto_p50:.2f} ms, ratio {p50 / moto_p50:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
