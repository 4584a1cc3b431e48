"""Factories for domain records used across test suites."""
from __future__ import annotations

from typing import Any

from airdock.core.models import Environment
from airdock.core.ports import EnvironmentRecord

ACCOUNT = "123456789012"
REGION = "us-east-1"


def sample_environment(name: str = "env-1", **overrides: Any) -> Environment:
    """An Environment with every member set (optional ones included), so round-trips cover all."""
    fields: dict[str, Any] = {
        "Name": name,
        "Status": "AVAILABLE",
        "Arn": f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
        "CreatedAt": 1767225600.25,
        "WebserverUrl": f"{name}.airflow.local:8080",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/airdock-exec",
        "ServiceRoleArn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA",
        "KmsKey": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000-1111",
        "AirflowVersion": "3.0.6",
        "SourceBucketArn": "arn:aws:s3:::airdock-dags",
        "DagS3Path": "dags",
        "PluginsS3Path": "plugins.zip",
        "PluginsS3ObjectVersion": "v1",
        "RequirementsS3Path": "requirements.txt",
        "RequirementsS3ObjectVersion": "v2",
        "StartupScriptS3Path": "startup.sh",
        "StartupScriptS3ObjectVersion": "v3",
        "AirflowConfigurationOptions": {"core.default_timezone": "utc", "celery.worker_autoscale": "5,5"},
        "EnvironmentClass": "mw1.small",
        "MaxWorkers": 10,
        "MinWorkers": 1,
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        "LoggingConfiguration": {
            "DagProcessingLogs": {"Enabled": True, "LogLevel": "WARNING",
                                  "CloudWatchLogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-{name}-DAGProcessing"},
            "SchedulerLogs": {"Enabled": False, "LogLevel": "INFO"},
            "WebserverLogs": {"Enabled": True, "LogLevel": "ERROR"},
            "WorkerLogs": {"Enabled": True, "LogLevel": "CRITICAL"},
            "TaskLogs": {"Enabled": True, "LogLevel": "DEBUG"},
        },
        "LastUpdate": {
            "Status": "FAILED", "CreatedAt": 1767229200.5, "Source": "UpdateEnvironment",
            "Error": {"ErrorCode": "E1", "ErrorMessage": "boom — ünïcode"},
            "WorkerReplacementStrategy": "GRACEFUL",
        },
        "WeeklyMaintenanceWindowStart": "SUN:03:30",
        "Tags": {"team": "data", "empty": ""},
        "WebserverAccessMode": "PUBLIC_ONLY",
        "Schedulers": 2,
        "MinWebservers": 2,
        "MaxWebservers": 5,
        "WebserverVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-1",
        "DatabaseVpcEndpointService": "com.amazonaws.vpce.us-east-1.vpce-svc-2",
        "CeleryExecutorQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:airflow-celery-{name}",
        "EndpointManagement": "SERVICE",
    }
    fields.update(overrides)
    return Environment.model_validate(fields)


def sample_record(name: str = "env-1", *, internal: dict[str, Any] | None = None, **overrides: Any) -> EnvironmentRecord:
    """A fresh (unsaved, version 0) record for `name`; `overrides` replace Environment members."""
    return EnvironmentRecord(
        environment=sample_environment(name, **overrides),
        internal=internal if internal is not None else {
            "execution": "exec-0001",
            "workflow": "create",
            "ports": {"webserver": 18080, "log_server": 18793},
            "rollback": None,
            "progress": ["queued", "provisioning"],
        },
    )


def local_spec(name: str, dags: Any = None, version: str = "3.3.2", **options: str) -> Any:
    """A one-scheduler environment as local mode runs it, its DAGs the folder `dags`."""
    from airdock.core.blueprint import Sources
    from airdock.local.airflow_env import LocalSpec

    environment = sample_environment(name, AirflowVersion=version, Schedulers=1, MinWorkers=1, LoggingConfiguration={},
                                     AirflowConfigurationOptions=options)
    return LocalSpec(environment, Sources(dags=str(dags) if dags else None))
