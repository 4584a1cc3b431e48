"""Fargate sizes of each Airflow component per MWAA environment class.

Sized from measurements (DESIGN.md: scheduler ~380 MB, api-server 200-260 MB, triggerer ~245 MB,
dag-processor ~150 MB, a Celery worker with 4 slots ~365 MB) with headroom for DAG code, and
scaled with the class like MWAA scales its containers. Each (cpu, memory) pair is a valid Fargate
combination (tests/aws check it). bench/cost.py prices exactly these numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

COMPONENTS = ("scheduler", "webserver", "dag-processor", "triggerer", "worker", "web-front")


@dataclass(frozen=True)
class Size:
    cpu: int  # CPU units (1024 = 1 vCPU)
    memory: int  # MiB

    @property
    def vcpu(self) -> float:
        return self.cpu / 1024

    @property
    def gib(self) -> float:
        return self.memory / 1024


SIZES: dict[str, dict[str, Size]] = {
    "mw1.micro": {
        "scheduler": Size(512, 1024), "webserver": Size(256, 1024), "dag-processor": Size(256, 512),
        "triggerer": Size(256, 512), "worker": Size(512, 1024), "web-front": Size(256, 1024),
    },
    "mw1.small": {
        "scheduler": Size(512, 1024), "webserver": Size(256, 1024), "dag-processor": Size(256, 1024),
        "triggerer": Size(256, 512), "worker": Size(1024, 2048), "web-front": Size(256, 1024),
    },
    "mw1.medium": {
        "scheduler": Size(1024, 2048), "webserver": Size(512, 2048), "dag-processor": Size(512, 1024),
        "triggerer": Size(256, 1024), "worker": Size(2048, 4096), "web-front": Size(512, 2048),
    },
    "mw1.large": {
        "scheduler": Size(2048, 4096), "webserver": Size(1024, 2048), "dag-processor": Size(1024, 2048),
        "triggerer": Size(512, 1024), "worker": Size(4096, 8192), "web-front": Size(512, 2048),
    },
    "mw1.xlarge": {
        "scheduler": Size(4096, 8192), "webserver": Size(1024, 4096), "dag-processor": Size(2048, 4096),
        "triggerer": Size(1024, 2048), "worker": Size(8192, 24576), "web-front": Size(1024, 2048),
    },
    "mw1.2xlarge": {
        "scheduler": Size(8192, 16384), "webserver": Size(2048, 4096), "dag-processor": Size(4096, 8192),
        "triggerer": Size(1024, 2048), "worker": Size(16384, 32768), "web-front": Size(1024, 2048),
    },
}
# "web-front" (images/airflow/web_front.py): a small proxy, but each CLI call runs an Airflow
# command in its task (~300 MB while it runs), so it is sized for one such command at a time.
# The one-off `airflow db migrate` task.
MIGRATE = Size(512, 1024)

# Fargate's valid memory (MiB) per CPU value.
FARGATE_MEMORY: dict[int, "range | tuple[int, ...]"] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


def size(environment_class: str, component: str) -> Size:
    if component == "migrate":
        return MIGRATE
    return SIZES[environment_class][component]


def valid_fargate(s: Size) -> bool:
    return s.cpu in FARGATE_MEMORY and s.memory in FARGATE_MEMORY[s.cpu]
