#!/usr/bin/env python3
"""Monthly cost of Airdock environments on AWS per environment class, against MWAA's price, with
every billed piece counted, and the cases the result is sensitive to.

Prices: us-east-1 list prices, on demand, no free tier, 730 hours a month, 24x7 operation.

Per environment (what one more environment adds):
- Fargate (ARM64/Graviton, template.yaml's default AirflowImageArchitecture): $0.03238 per
  vCPU-hour, $0.00356 per GB-hour (x86: $0.04048, $0.004445; Spot: about 70 % less). Task sizes
  from airdock/aws/sizing.py; counts as MWAA's defaults: Schedulers and MinWebservers per class,
  one DAG processor, one triggerer, MinWorkers=1 worker, one web front. The `db migrate` task
  runs seconds per change: not counted.
- SQS broker: Celery long-polls (10 s waits) from each worker plus the scheduler's sends: ~1 M
  requests a month at $0.40 per million.
- Secrets Manager: three secrets (database credentials, Airflow keys, web-front token key) at $0.40
  each, and API calls at $0.05 per 10,000: the autoscaler's Data API statements read the database
  secret each minute (~2 calls), tasks read theirs when they start.
- Cloud Map: the webserver's service, one registered instance per webserver task ($0.10 each a
  month) and its DNS queries from the web front ($0.40 per million, ~1 M).
- CloudWatch: the environment's AmazonMWAA metrics, the three the autoscaler publishes (QueuedTasks,
  RunningTasks, ScheduledTasks at $0.30; Airflow's StatsD output is not shipped on AWS); the autoscaler's
  PutMetricData (one request a minute, $0.01 per 1,000) and GetMetricData (~3 metrics a minute,
  $0.01 per 1,000 metrics); 1 GB of component logs ingested ($0.50/GB) and stored ($0.03/GB).
- RDS Data API: the autoscaler's ~4 statements a minute at $0.35 per million.
- The autoscaler's share of its per-minute Lambda run: ~0.3 s of 512 MB per environment per tick.

Per deployment (shared by every environment of a stack; "1 env" carries it alone):
- Aurora PostgreSQL Serverless v2 averaging 0.5 ACU while any environment runs ($0.12 per ACU-hour;
  AuroraMinCapacity 0 lets it pause when every environment is paused or deleted: the "idle" case),
  1 GB storage ($0.10/GB-month), ~20 M I/O ($0.20 per million).
- One internal ALB: $0.0225/hour + 1 LCU ($0.008/LCU-hour).
- Cloud Map's private DNS namespace: a Route 53 private hosted zone, $0.50 a month.
- Lambda: the autoscaler every minute (43,800 runs of ~1 s at 512 MB), the lifecycle function every
  5 minutes (8,760 runs), requests at $0.20 per million and $0.0000166667 per GB-second (x86).
- Powertools' custom metrics (core/observability.py: 5 at $0.30), 0.5 GB of function, workflow and
  API access logs, X-Ray traces (~60,000 a month at $5 per million). The 14 alarms ($0.10 each) exist
  only with AlarmTopicArn set: the "with alarms" case.
- Network: the API function runs in the VPC (InvokeRestApi reaches PRIVATE_ONLY environments) and
  calls DynamoDB and S3 (gateway endpoints, free), Step Functions, Lambda, EventBridge, IAM and
  Secrets Manager. In a VPC with a NAT gateway (what MWAA's own VPC template builds, and what the
  environments use to reach ECR, S3, SQS and CloudWatch as MWAA's do) these calls cost NAT data
  processing only ($0.045/GB, ~1 GB). A VPC without NAT needs five more interface endpoints for
  them, $0.01 per hour in each of two AZs (the "no NAT" case below).
- Control plane: DynamoDB on demand, Step Functions standard transitions, API Gateway requests:
  cents a month for a few changes a day; counted as $0.50.
- Not counted, on either side: the NAT gateway or VPC endpoints the environments need (MWAA's need
  the same), data transfer, S3 storage of DAGs.

MWAA anchors (MWAA_FACTS.md): small $0.49/h, medium $0.74/h, large $0.99/h, each with one worker
included; micro, xlarge and 2xlarge have no anchor and are not compared.

Prints a table, the sensitivity cases for mw1.small, then one summary line for mw1.small:
    cost: mw1.small airdock $X/month vs mwaa $Y/month, ratio R
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from airdock.aws import sizing  # noqa: E402
from airdock.core import catalog  # noqa: E402
from airdock.core.observability import CUSTOM_METRICS  # noqa: E402

HOURS = 730
MINUTES = HOURS * 60
FARGATE = {"ARM64": (0.03238, 0.00356), "X86_64": (0.04048, 0.004445)}  # per vCPU-hour, per GB-hour
SPOT_DISCOUNT = 0.70
AURORA_ACU_HOUR = 0.12
AURORA_STORAGE_GB_MONTH = 0.10
AURORA_IO_MILLION = 0.20
ALB_HOUR = 0.0225
ALB_LCU_HOUR = 0.008
SQS_MILLION = 0.40
SECRET_MONTH = 0.40
SECRETS_PER_ENVIRONMENT = 3  # airdock/{Name}/database, /airflow, /web-front
SECRETS_API_10K = 0.05
CLOUD_MAP_INSTANCE_MONTH = 0.10
HOSTED_ZONE_MONTH = 0.50
DNS_QUERIES_MILLION = 0.40
METRIC_MONTH = 0.30
PUT_METRIC_REQUESTS_1K = 0.01
GET_METRIC_DATA_1K_METRICS = 0.01
LOG_GB = 0.50 + 0.03
DATA_API_MILLION = 0.35
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUESTS_MILLION = 0.20
ALARM_MONTH = 0.10
ALARMS = 14
XRAY_MILLION = 5.0
NAT_GB = 0.045
INTERFACE_ENDPOINT_AZ_HOUR = 0.01
API_FUNCTION_ENDPOINTS = ("states", "lambda", "events", "iam", "secretsmanager")
CONTROL_PLANE_MONTH = 0.50
MWAA_HOURLY = {"mw1.small": 0.49, "mw1.medium": 0.74, "mw1.large": 0.99}


@dataclass(frozen=True)
class Case:
    architecture: str = "ARM64"
    spot_workers: bool = False
    aurora_acu: float = 0.5  # average capacity over the month
    environments: int = 1  # sharing one deployment
    nat: bool = True  # False: interface endpoints for the API function's calls instead
    alarms: bool = False  # AlarmTopicArn set


def fargate_month(environment_class: str, case: Case = Case()) -> float:
    klass = catalog.ENVIRONMENT_CLASSES[environment_class]
    counts = {"scheduler": klass.default_schedulers, "webserver": klass.min_webservers, "dag-processor": 1,
              "triggerer": 1, "worker": 1, "web-front": 1}
    vcpu_hour, gb_hour = FARGATE[case.architecture]
    hourly = 0.0
    for component, count in counts.items():
        size = sizing.size(environment_class, component)
        price = count * (size.vcpu * vcpu_hour + size.gib * gb_hour)
        hourly += price * (1 - SPOT_DISCOUNT) if component == "worker" and case.spot_workers else price
    return hourly * HOURS


def per_environment_month(environment_class: str) -> dict[str, float]:
    webservers = catalog.ENVIRONMENT_CLASSES[environment_class].min_webservers
    return {
        "sqs": 1 * SQS_MILLION,
        "secrets": SECRETS_PER_ENVIRONMENT * SECRET_MONTH + 2 * MINUTES / 10_000 * SECRETS_API_10K,
        "cloud map": webservers * CLOUD_MAP_INSTANCE_MONTH + 1 * DNS_QUERIES_MILLION,
        "cloudwatch": 3 * METRIC_MONTH + MINUTES / 1000 * PUT_METRIC_REQUESTS_1K
        + 3 * MINUTES / 1000 * GET_METRIC_DATA_1K_METRICS + 1 * LOG_GB,
        "data api": 4 * MINUTES / 1e6 * DATA_API_MILLION,
        "autoscaler share": MINUTES * 0.3 * 0.5 * LAMBDA_GB_SECOND,
    }


def shared_month(case: Case = Case()) -> dict[str, float]:
    lambda_runs = MINUTES + MINUTES / 5  # autoscaler every minute, lifecycle every 5 minutes
    network = (len(API_FUNCTION_ENDPOINTS) * 2 * INTERFACE_ENDPOINT_AZ_HOUR * HOURS) if not case.nat else 1 * NAT_GB
    return {
        "aurora": case.aurora_acu * AURORA_ACU_HOUR * HOURS + 1 * AURORA_STORAGE_GB_MONTH + 20 * AURORA_IO_MILLION,
        "alb": (ALB_HOUR + ALB_LCU_HOUR) * HOURS,
        "cloud map zone": HOSTED_ZONE_MONTH,
        "lambda": lambda_runs * 1.0 * 0.5 * LAMBDA_GB_SECOND + lambda_runs / 1e6 * LAMBDA_REQUESTS_MILLION,
        "observability": len(CUSTOM_METRICS) * METRIC_MONTH + (ALARMS * ALARM_MONTH if case.alarms else 0.0) + 0.5 * LOG_GB
        + 60_000 / 1e6 * XRAY_MILLION,
        "network": network,
        "control plane": CONTROL_PLANE_MONTH,
    }


def airdock_month(environment_class: str, case: Case = Case()) -> float:
    """One environment's monthly cost when `case.environments` share a deployment."""
    return (fargate_month(environment_class, case) + sum(per_environment_month(environment_class).values())
            + sum(shared_month(case).values()) / case.environments)


def main() -> int:
    print(f"{'class':<12}{'fargate':>10}{'airdock(1 env)':>16}{'airdock(5 envs)':>17}{'mwaa':>10}{'ratio':>8}")
    for name in sizing.SIZES:
        alone, shared = airdock_month(name), airdock_month(name, Case(environments=5))
        mwaa = MWAA_HOURLY.get(name)
        mwaa_month = f"{mwaa * HOURS:10.2f}" if mwaa else f"{'n/a':>10}"
        ratio = f"{alone / (mwaa * HOURS):8.2f}" if mwaa else f"{'':>8}"
        print(f"{name:<12}{fargate_month(name):10.2f}{alone:16.2f}{shared:17.2f}{mwaa_month}{ratio}")

    small, mwaa_small = "mw1.small", MWAA_HOURLY["mw1.small"] * HOURS
    print(f"\n{small}, one environment, every piece ($/month):")
    pieces = {"fargate": fargate_month(small), **per_environment_month(small), **shared_month()}
    for piece, value in pieces.items():
        print(f"  {piece:<18}{value:9.2f}")
    print(f"\nsensitivity ({small}; ratio to MWAA's ${mwaa_small:.2f}):")
    base = Case()
    for label, case in (("as counted", base), ("database averaging 1 ACU", replace(base, aurora_acu=1.0)),
                        ("x86 instead of ARM64", replace(base, architecture="X86_64")),
                        ("five environments sharing", replace(base, environments=5)),
                        ("workers on Fargate Spot", replace(base, spot_workers=True)),
                        ("idle database paused at 0 ACU", replace(base, aurora_acu=0.0)),
                        ("no NAT: interface endpoints", replace(base, nat=False)),
                        ("with alarms (AlarmTopicArn)", replace(base, alarms=True))):
        value = airdock_month(small, case)
        print(f"  {label:<32}${value:8.2f}  ratio {value / mwaa_small:.2f}")
    total = airdock_month(small)
    print(f"cost: mw1.small airdock ${total:.2f}/month vs mwaa ${mwaa_small:.2f}/month, ratio {total / mwaa_small:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
