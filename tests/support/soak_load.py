"""The load of bench/soak.py: clients that loop without pause over a weighted mix of MWAA calls,
each on its own keep-alive connection, SigV4-signed by botocore as boto3 signs. Clients are asyncio
tasks (a process runs several); each result is (kind, seconds, ok, detail)."""
from __future__ import annotations

import json
import random
import time
from typing import Any
from urllib.parse import quote

BUCKET = "soak-dags"
MIX = (("get", 45), ("list", 15), ("tags", 15), ("tag", 10), ("untag", 10), ("create", 5))
READS = {"get", "list", "tags"}
TIMEOUT_S = 30  # an answer slower than this counts as an error (the connection is rebuilt)


def _create_body() -> bytes:
    return json.dumps({
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/soak", "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
        "DagS3Path": "dags", "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    }).encode()


def _request(kind: str, rng: random.Random, names: list[str], seed: int, created: int) -> tuple[str, str, bytes]:
    name = rng.choice(names)
    arn = quote(f"arn:aws:airflow:us-east-1:000000000000:environment/{name}", safe="")
    if kind == "get":
        return "GET", f"/environments/{name}", b""
    if kind == "list":
        return "GET", "/environments?MaxResults=25", b""
    if kind == "tags":
        return "GET", f"/tags/{arn}", b""
    if kind == "tag":
        return "POST", f"/tags/{arn}", json.dumps({"Tags": {f"t{rng.randrange(5)}": "v"}}).encode()
    if kind == "untag":
        return "DELETE", f"/tags/{arn}?tagKeys=t{rng.randrange(5)}", b""
    return "PUT", f"/environments/soak-{seed}-{created}", _create_body()


async def client(port: int, key: tuple[str, str], names: list[str], deadline: float, seed: int,
                  out: list[tuple[str, float, bool, str]]) -> None:
    """One client: a keep-alive connection, one request at a time, no pause between them."""
    import asyncio

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    credentials = Credentials(*key)
    rng = random.Random(seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    host = f"127.0.0.1:{port}"
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    created = 0
    while time.time() < deadline:
        kind = rng.choice(kinds)
        created += kind == "create"
        method, path, body = _request(kind, rng, names, seed, created)
        request = AWSRequest(method=method, url=f"http://{host}{path}", data=body,
                             headers={"Content-Type": "application/json"})
        SigV4Auth(credentials, "airflow", "us-east-1").add_auth(request)
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in request.headers.items()) + "\r\n"
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(head.encode() + body)
            status, payload = await asyncio.wait_for(_response(reader), TIMEOUT_S)
            elapsed = time.perf_counter() - started
            ok = status == 200
            out.append((kind, elapsed, ok, "" if ok else f"{kind} {status} {payload[:200]!r}"))
        except Exception as exc:  # counted as an error, and the connection is rebuilt
            out.append((kind, time.perf_counter() - started, False, f"{kind} {exc!r}"))
            if connection is not None:
                connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


async def _response(reader: Any) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 answer (the endpoint always sends a Content-Length)."""
    status = int((await reader.readline()).split()[1])
    length = None
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("answer without Content-Length")
    return status, await reader.readexactly(length)


def run_clients(port: int, key: tuple[str, str], names: list[str], deadline: float, clients: list[int],
                queue: Any) -> None:
    """Run the clients numbered `clients` (each number seeds its choices) until `deadline` (a
    time.time()), then put their results on `queue`."""
    import asyncio

    async def run() -> None:
        await asyncio.gather(*(client(port, key, names, deadline, seed, results) for seed in clients))

    results: list[tuple[str, float, bool, str]] = []
    asyncio.run(run())
    queue.put(results)


def seed_environments(server: Any, count: int) -> list[str]:
    bucket = server.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    client = server.client()
    names = [f"soak-{i:03d}" for i in range(count)]
    for name in names:
        client.create_environment(
            Name=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/soak", SourceBucketArn=f"arn:aws:s3:::{BUCKET}",
            DagS3Path="dags", NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
            Tags={"soak": "yes"})
    return names
