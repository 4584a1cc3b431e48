"""Soak: N clients for M minutes of mixed MWAA API calls on a control-plane-only `airdock serve`.

    .venv/bin/python bench/soak.py [--clients 50] [--minutes 1] [--processes 4] [--environments 100]

Each client loops without pause over a weighted mix: GetEnvironment 45 %, ListEnvironments 15 %,
ListTagsForResource 15 % (reads), TagResource 10 %, UntagResource 10 %, CreateEnvironment 5 %
(each create a new name). Requests are SigV4-signed like boto3's (botocore's SigV4Auth) and sent
over one keep-alive connection per client; clients are asyncio tasks spread over a few processes.
(They were threads: with 12 per process on this 2-core machine, the slowest 1 % of reads spent
~40 ms after the server had sent the answer, waiting for their thread to get the GIL back; the
load generator was measuring itself.) An error is any transport failure or any answer other than
the success the call must have (every call in the mix is valid).

Last line: `soak: clients N, requests R, throughput T req/s, read p99 P ms, errors E`.
Target: 0 errors and read p99 ≤ 50 ms at 50 clients.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "layers" / "core"))

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), to tell server cost from queueing."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (/proc/*/schedstat):
    on a shared machine this, not the server's own work, is where latency goes."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    from support.live_server import LiveServer
    from support.soak_load import READS, run_clients, seed_environments

    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=4, help="client processes the clients are spread over")
    parser.add_argument("--environments", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="airdock-soak-") as tmp:
        server = LiveServer(Path(tmp) / "data", env={"AIRDOCK_AUTOSCALER": "off"}).start()
        try:
            names = seed_environments(server, args.environments)
            key = server.credentials()
            deadline = time.time() + 2 + args.minutes * 60
            queue: Any = multiprocessing.get_context("fork").Queue()
            groups = [list(range(i, args.clients, args.processes)) for i in range(min(args.processes, args.clients))]
            processes = [multiprocessing.get_context("fork").Process(
                target=run_clients, args=(server.port, key, names, deadline, group, queue)) for group in groups]
            cpu_before = cpu_seconds(server.process.pid)
            wait_before = run_queue_wait_seconds(server.process.pid)
            started = time.time()
            for process in processes:
                process.start()
            results: list[tuple[str, float, bool, str]] = []
            for _ in processes:
                results.extend(queue.get())
            for process in processes:
                process.join()
            wall = time.time() - started
            server_cpu = cpu_seconds(server.process.pid) - cpu_before
            server_wait = run_queue_wait_seconds(server.process.pid) - wait_before
            server_log = server.log()
        finally:
            server.stop()
    reads = [elapsed for kind, elapsed, ok, _ in results if kind in READS and ok]
    writes = [elapsed for kind, elapsed, ok, _ in results if kind not in READS and ok]
    errors = [detail for *_, ok, detail in results if not ok]
    for detail in errors[:10]:
        print("error:", detail)
    if "Traceback" in server_log:
        print("server log has tracebacks:", server_log[server_log.index("Traceback"):][:2000])
    print(f"reads: {len(reads)}, p50 {percentile(reads, 50) * 1000:.1f} ms, p99 {percentile(reads, 99) * 1000:.1f} ms; "
          f"writes: {len(writes)}, p50 {percentile(writes, 50) * 1000:.1f} ms, p99 {percentile(writes, 99) * 1000:.1f} ms")
    # Closed loop (no think time): mean latency = clients / throughput (Little's law), so the
    # latency target is a throughput target; the server's own CPU per request says what it costs.
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"server CPU {server_cpu / max(len(results), 1) * 1000:.2f} ms per request "
          f"({server_cpu / wall * 100:.0f}% of a core), waiting for a CPU {server_wait / max(len(results), 1) * 1000:.2f} ms "
          f"per request; machine load average {load} on {multiprocessing.cpu_count()} cores")
    print(f"soak: clients {args.clients}, requests {len(results)}, throughput {len(results) / wall:.0f} req/s, "
          f"read p99 {percentile(reads, 99) * 1000:.1f} ms, errors {len(errors)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
