"""What a production user expects of the stack, each a template parameter with a safe default:
deletion protection, alarms to an SNS topic, API access logs and throttling, workflow logging and
tracing, a failure destination for the lifecycle's asynchronous runs, HTTPS by default, no broad
default ingress, and Fargate Spot as an option for workers (checked on moto)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from airdock.aws import naming
from aws.conftest import Stack
from aws.test_adapters import _up, environment
from support.sam import transformed_template
from support.template import load_template


def _parameters() -> dict[str, Any]:
    return load_template()["Parameters"]


def _resources() -> dict[str, Any]:
    return transformed_template()["Resources"]


def test_every_production_option_is_a_parameter_with_a_safe_default() -> None:
    params = _parameters()
    assert params["DeletionProtection"]["Default"] == "true"
    assert params["WebProtocol"]["Default"] == "HTTPS"
    assert params["ApiAccessLogs"]["Default"] == "Enabled"
    assert params["Tracing"]["Default"] == "Enabled"
    assert params["WorkflowLogLevel"]["Default"] == "ERROR"
    assert params["WorkerCapacity"]["Default"] == "FARGATE"
    assert params["AlarmTopicArn"]["Default"] == ""
    assert 0 < params["ApiThrottlingRateLimit"]["Default"] <= params["ApiThrottlingBurstLimit"]["Default"]
    # Who may reach the load balancers and the database is the user's VPC CIDR, never a broad default.
    assert "Default" not in params["WebIngressCidr"]


def test_https_is_the_default_and_needs_a_certificate() -> None:
    template = load_template()
    rule = template["Rules"]["HttpsNeedsACertificate"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "WebProtocol"}, "HTTPS"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}
    for listener in ("InternalListener", "PublicListener"):
        props = template["Resources"][listener]["Properties"]
        assert props["Protocol"] == {"Fn::If": ["UseHttps", "HTTPS", "HTTP"]}


def test_deletion_protection_covers_the_table_the_database_and_the_load_balancers() -> None:
    resources = _resources()
    assert resources["EnvironmentsTable"]["Properties"]["DeletionProtectionEnabled"] == {"Fn::If": ["Protected", True, False]}
    assert resources["MetadataCluster"]["Properties"]["DeletionProtection"] == {"Fn::If": ["Protected", True, False]}
    for balancer in ("InternalLoadBalancer", "PublicLoadBalancer"):
        attributes = {a["Key"]: a["Value"] for a in resources[balancer]["Properties"]["LoadBalancerAttributes"]}
        assert attributes["deletion_protection.enabled"] == {"Ref": "DeletionProtection"}


def test_alarms_watch_functions_workflows_components_database_and_lifecycle_failures() -> None:
    resources = _resources()
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for function in ("ApiFunction", "ProvisionerFunction", "AutoscalerFunction", "LifecycleFunction"):
        assert alarms[f"{function}ErrorsAlarm"]["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    for kind in ("Create", "Update", "Delete"):
        metrics = alarms[f"{kind}WorkflowFailuresAlarm"]["Properties"]["Metrics"]
        assert {m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m} == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert alarms["ComponentRestartsAlarm"]["Properties"]["MetricName"] == "ComponentTaskExits"
    assert alarms["DatabaseCapacityAlarm"]["Properties"]["MetricName"] == "ACUUtilization"
    assert alarms["LifecycleFailuresAlarm"]["Properties"]["Namespace"] == "AWS/SQS"
    for name, alarm in alarms.items():
        assert alarm["Condition"] in ("HasAlarmTopic", "AuroraAlarms"), name
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], name
    # The component exits reach the lifecycle function, which counts them.
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"
             and r["Properties"].get("EventPattern", {}).get("detail-type") == ["ECS Task State Change"]]
    assert len(rules) == 1 and "LifecycleFunction" in str(rules[0]["Properties"]["Targets"])


def test_api_access_logs_throttling_and_workflow_logs_and_traces() -> None:
    resources = _resources()
    stage = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage")["Properties"]
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert stage["MethodSettings"][0]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert stage["AccessLogSetting"]["Fn::If"][0] == "LogApiAccess"
    for kind in ("Create", "Update", "Delete"):
        machine = resources[f"{kind}EnvironmentStateMachine"]["Properties"]
        assert machine["TracingConfiguration"] == {"Enabled": {"Fn::If": ["TracingOn", True, False]}}
        assert machine["LoggingConfiguration"]["Fn::If"][0] == "LogWorkflows"
        assert machine["LoggingConfiguration"]["Fn::If"][1]["IncludeExecutionData"] is False
    for function in ("ApiFunction", "ProvisionerFunction", "AutoscalerFunction", "LifecycleFunction"):
        assert resources[function]["Properties"]["TracingConfig"] == {"Mode": {"Fn::If": ["TracingOn", "Active", "PassThrough"]}}


def test_failed_asynchronous_lifecycle_runs_go_to_a_queue() -> None:
    resources = _resources()
    config = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert config["FunctionName"] == {"Ref": "LifecycleFunction"}
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["LifecycleFailureQueue", "Arn"]}
    assert config["MaximumRetryAttempts"] == 2


def test_workers_may_run_on_fargate_spot(stack: Stack) -> None:
    created: dict[str, dict[str, Any]] = {}
    # moto keeps no capacity provider strategy: the request itself is what ECS would act on.
    stack.client("ecs").meta.events.register(
        "before-parameter-build.ecs.CreateService", lambda params, **_: created.__setitem__(params["serviceName"], dict(params)))
    stack.environ["AIRDOCK_WORKER_CAPACITY"] = "FARGATE_SPOT"
    env = environment(stack)
    _up(stack, env)
    worker, scheduler = created[naming.service_name(env.Name, "worker")], created[naming.service_name(env.Name, "scheduler")]
    assert worker["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in worker
    assert scheduler["launchType"] == "FARGATE"  # the rest stays on regular Fargate
    assert "capacityProviderStrategy" not in scheduler


def test_the_readme_deploy_section_names_every_parameter_and_the_callers_pass_role() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Deploy to AWS"):]
    section = section[:section.index("\n## ", 1)]
    missing = [name for name in _parameters() if f"`{name}`" not in section]
    assert not missing, f"README 'Deploy to AWS' does not name the parameters {missing}"
    assert "iam:PassRole" in section and "ecs-tasks.amazonaws.com" in section
