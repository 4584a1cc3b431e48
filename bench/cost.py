#!/usr/bin/env python3
"""Monthly cost of one Airdock environment on AWS per environment class, against MWAA's price.

Assumptions (us-east-1 on-demand list prices; 730 hours a month; 24x7 operation):
- Fargate on ARM64/Graviton (template.yaml's default AirflowImageArchitecture): $0.03238 per
  vCPU-hour, $0.00356 per GB-hour. Task sizes are airdock/aws/sizing.py's, the counts MWAA's
  defaults: Schedulers and MinWebservers per class (2 each, 1 on mw1.micro), one DAG processor,
  one triggerer, MinWorkers=1 worker, one web front. The `db migrate` task runs seconds per change: ignored.
- Metadata DB: Aurora Serverless v2 at its minimum of 0.5 ACU ($0.12 per ACU-hour) plus 1 GB
  storage ($0.10/GB-month) and I/O ($0.20 per million, ~20 M/month for a busy scheduler).
  The cluster is SHARED by every environment of a deployment; the worst case, one environment,
  carries it alone (that is what the ratio below uses).
- One ALB (shared by all environments): $0.0225/hour + 1 LCU ($0.008/LCU-hour) on average.
- SQS: Celery long-polls (10 s waits) from each worker plus the scheduler's sends: ~1 M requests
  a month, $0.40 per million after the free tier (free tier ignored).
- Secrets Manager: 2 secrets per environment, $0.40 each a month.
- CloudWatch: ~10 custom metrics at $0.30 each; 1 GB logs ingested ($0.50/GB) and stored.
- Control plane: DynamoDB on demand, Step Functions standard transitions ($0.025 per 1000) and
  Lambda requests are cents a month for a few changes a day; counted as $0.50.
- Not counted, on either side: NAT gateway / VPC endpoints (MWAA needs the same network), data
  transfer, S3 storage of DAGs.
- MWAA anchors (MWAA_FACTS.md): small $0.49/h, medium $0.74/h, large $0.99/h, each with one
  worker included; micro, xlarge and 2xlarge are not in the anchors and are left out of the
  comparison.

Prints a table, then one summary line for mw1.small:
    cost: mw1.small airdock $X/month vs mwaa $Y/month, ratio R
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from airdock.aws import sizing  # noqa: E402
from airdock.core import catalog  # noqa: E402

HOURS = 730
FARGATE_VCPU_HOUR = 0.03238  # ARM64
FARGATE_GB_HOUR = 0.00356  # ARM64
AURORA_ACU_HOUR = 0.12
AURORA_MIN_ACU = 0.5
AURORA_STORAGE_GB_MONTH = 0.10
AURORA_IO_MILLION = 0.20
ALB_HOUR = 0.0225
ALB_LCU_HOUR = 0.008
SQS_MILLION = 0.40
SECRET_MONTH = 0.40
METRIC_MONTH = 0.30
LOG_GB = 0.50 + 0.03
CONTROL_PLANE_MONTH = 0.50
MWAA_HOURLY = {"mw1.small": 0.49, "mw1.medium": 0.74, "mw1.large": 0.99}


def fargate_month(environment_class: str) -> float:
    klass = catalog.ENVIRONMENT_CLASSES[environment_class]
    counts = {"scheduler": klass.default_schedulers, "webserver": klass.min_webservers, "dag-processor": 1,
              "triggerer": 1, "worker": 1, "web-front": 1}
    hourly = 0.0
    for component, count in counts.items():
        size = sizing.size(environment_class, component)
        hourly += count * (size.vcpu * FARGATE_VCPU_HOUR + size.gib * FARGATE_GB_HOUR)
    return hourly * HOURS


def shared_month() -> float:
    aurora = AURORA_MIN_ACU * AURORA_ACU_HOUR * HOURS + 1 * AURORA_STORAGE_GB_MONTH + 20 * AURORA_IO_MILLION
    alb = (ALB_HOUR + ALB_LCU_HOUR) * HOURS
    return aurora + alb + CONTROL_PLANE_MONTH


def per_environment_extras() -> float:
    return 1 * SQS_MILLION + 2 * SECRET_MONTH + 10 * METRIC_MONTH + 1 * LOG_GB


def airdock_month(environment_class: str, environments_sharing: int = 1) -> float:
    return fargate_month(environment_class) + per_environment_extras() + shared_month() / environments_sharing


def main() -> int:
    print(f"{'class':<12}{'fargate':>10}{'airdock(1 env)':>16}{'airdock(5 envs)':>17}{'mwaa':>10}{'ratio':>8}")
    for name in sizing.SIZES:
        alone, shared = airdock_month(name), airdock_month(name, 5)
        mwaa = MWAA_HOURLY.get(name)
        mwaa_month = f"{mwaa * HOURS:10.2f}" if mwaa else f"{'n/a':>10}"
        ratio = f"{alone / (mwaa * HOURS):8.2f}" if mwaa else f"{'':>8}"
        print(f"{name:<12}{fargate_month(name):10.2f}{alone:16.2f}{shared:17.2f}{mwaa_month}{ratio}")
    small, mwaa_small = airdock_month("mw1.small"), MWAA_HOURLY["mw1.small"] * HOURS
    print(f"cost: mw1.small airdock ${small:.2f}/month vs mwaa ${mwaa_small:.2f}/month, ratio {small / mwaa_small:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
