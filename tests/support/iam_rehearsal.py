"""IAM, rehearsed: every AWS call Airdock's pieces make in the AWS tests, checked against the
policies the template gives the role that makes it on AWS.

moto checks no IAM, so a call a role may not make passes every test here and fails on AWS. This
module closes that gap:
1. **Record** every call (a botocore `before-parameter-build` handler, registered the way moto
   registers its own, so every client of every session has it) with the role that runs it. The role
   comes from the call stack: the outermost frame of a known entry point (a function's `app.py`,
   the domain's provisioning/lifecycle/autoscaling loops, the environment's runtime code) decides;
   a call reached from an adapter alone (tests drive adapters directly) falls back to the role that
   runs that adapter. `acting_as(role)` overrides both. Calls from test code itself (moto set-up)
   have no role and are not checked.
2. **Map** each call to the IAM actions and resource ARNs AWS authorizes it as — including what AWS
   documents beyond the operation itself: `ecs:TagResource` for ECS create-with-tags, `iam:PassRole`
   for task definitions with roles, `sqs:TagQueue`, `secretsmanager:TagResource`, `logs:TagResource`,
   `elasticloadbalancing:AddTags` for tags given at creation, `secretsmanager:GetSecretValue` for the
   RDS Data API's secret, `kms:*` for data encrypted with a customer managed key — and, for what ECS
   does with a task definition on the task's behalf, the task execution role's calls (image pull,
   secrets, log streams).
3. **Evaluate** them against the role's statements in the transformed template (intrinsics resolved
   with the names of the moto stack, conditions with the request's context keys). A call that no
   statement allows fails the test, naming the role, the action and the resource.

An operation with no mapping here fails too: a new kind of call must be mapped before it passes.
"""
from __future__ import annotations

import contextvars
import json
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import botocore.handlers

from support.sam import transformed_template

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "airdock"
PARTITION = "aws"

# Roles of the template, by logical id.
API = "ApiFunctionRole"
PROVISIONER = "ProvisionerFunctionRole"
LIFECYCLE = "LifecycleFunctionRole"
AUTOSCALER = "AutoscalerFunctionRole"
TASK_EXECUTION = "TaskExecutionRole"
# The environment's own role (its ExecutionRoleArn): the user's, granted the template's
# EnvironmentExecutionPolicy (what Airdock's runtime needs beyond the user's own bucket).
ENVIRONMENT_TASK = "EnvironmentTaskRole"

# Entry points: the outermost frame in one of these files decides the role of a call.
_ENTRY_POINTS: list[tuple[str, str]] = [
    ("functions/api/app.py", API),
    ("functions/provisioner/app.py", PROVISIONER),
    ("functions/lifecycle/app.py", LIFECYCLE),
    ("functions/autoscaler/app.py", AUTOSCALER),
    ("airdock/core/provisioning.py", PROVISIONER),
    ("airdock/core/lifecycle.py", LIFECYCLE),
    ("airdock/core/autoscaling.py", AUTOSCALER),
    # What runs inside an environment: its entrypoint and web front (the control plane imports some
    # airdock_runtime modules too, e.g. the drain markers, which run as the piece that calls them).
    ("airdock_runtime/entrypoint.py", ENVIRONMENT_TASK),
    ("airdock_runtime/web_front.py", ENVIRONMENT_TASK),
]
# Adapters driven directly by a test: the role that runs them on AWS (the provisioner runs every
# EcsCompute method the lifecycle function runs, and more).
_ADAPTERS: list[tuple[str, str]] = [
    ("airdock/aws/factory.py:publish_task_metrics", AUTOSCALER),
    ("airdock/aws/factory.py:prune_drain_markers", AUTOSCALER),
    ("airdock/aws/worker_pool.py", AUTOSCALER),
    ("airdock/aws/data_plane.py", API),
    ("airdock/aws/iam.py", API),
    ("airdock/aws/compute.py", PROVISIONER),
    ("airdock/aws/broker.py", PROVISIONER),
    ("airdock/aws/database.py", PROVISIONER),
    ("airdock/aws/logs.py", PROVISIONER),
    ("airdock/aws/web.py", PROVISIONER),
    ("airdock/aws/discovery.py", PROVISIONER),
]

_acting_as: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_as", default=None)


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    """Attribute the calls made inside to `role` (for code whose role the stack cannot tell)."""
    token = _acting_as.set(role)
    try:
        yield
    finally:
        _acting_as.reset(token)


def _role_from_stack() -> str | None:
    explicit = _acting_as.get()
    if explicit:
        return explicit
    frame = sys._getframe(2)
    entry: str | None = None
    adapter: str | None = None
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        for suffix, role in _ENTRY_POINTS:
            if suffix in path:
                entry = role  # keep walking outwards: the outermost entry point wins
        if adapter is None:
            where = f"{path}:{frame.f_code.co_name}"
            for suffix, role in _ADAPTERS:
                if (":" in suffix and where.endswith(suffix)) or (":" not in suffix and path.endswith(suffix)):
                    adapter = role
                    break
        frame = frame.f_back
    return entry or adapter


# ---------------------------------------------------------------------------- recording


@dataclass
class Call:
    role: str
    service: str  # botocore's service name (e.g. "elbv2")
    operation: str
    params: dict[str, Any]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    active: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        role = _role_from_stack()
        if role is None:
            return
        call = Call(role, model.service_model.service_name, model.name, json.loads(json.dumps(params, default=str)))
        with self.lock:
            self.calls.append(call)


RECORDER = Recorder()
if ("before-parameter-build", RECORDER.record) not in botocore.handlers.BUILTIN_HANDLERS:
    # As moto does: every botocore session made from now on registers it for all its clients.
    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", RECORDER.record))


@contextmanager
def recording() -> Iterator[Recorder]:
    import boto3

    # A default session made before this module was imported lacks the handler.
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION._session.unregister("before-parameter-build", RECORDER.record)
        boto3.DEFAULT_SESSION._session.register("before-parameter-build", RECORDER.record)
    RECORDER.calls = []
    RECORDER.active = True
    try:
        yield RECORDER
    finally:
        RECORDER.active = False


# ---------------------------------------------------------------------------- calls -> IAM requests


@dataclass(frozen=True)
class Request:
    role: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    why: str = ""

    def describe(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.role}: {self.action} on {self.resource}{extra} ({self.why})"


def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


class Mapper:
    """Turns recorded calls into IAM requests. Keeps what it learns across calls of one test:
    the KMS key of each secret and queue, the roles of each task definition family."""

    def __init__(self) -> None:
        self.secret_keys: dict[str, str] = {}
        self.family_roles: dict[str, list[str]] = {}
        self.task_definitions: dict[str, dict[str, Any]] = {}

    # -- helpers
    @staticmethod
    def secret_arn(secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        return _arn("secretsmanager", f"secret:{secret_id}-AbCdEf")  # Secrets Manager adds 6 characters

    @staticmethod
    def secret_name(secret_id: str) -> str:
        if not secret_id.startswith("arn:"):
            return secret_id
        return re.sub(r"-[A-Za-z0-9]{6}$", "", secret_id.split(":secret:", 1)[1])

    @staticmethod
    def key_arn(key_id: str) -> str:
        return key_id if key_id.startswith("arn:") else _arn("kms", f"key/{key_id}" if "/" not in key_id else key_id)

    @staticmethod
    def cluster_name(params: dict[str, Any]) -> str:
        return str(params.get("cluster") or "default").rsplit("/", 1)[-1]

    @staticmethod
    def queue_name(params: dict[str, Any]) -> str:
        return str(params.get("QueueName") or params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1])

    def kms(self, role: str, key: str | None, via: str, actions: tuple[str, ...], why: str) -> list[Request]:
        if not key:
            return []
        context = (("kms:ViaService", f"{via}.{REGION}.amazonaws.com"),)
        return [Request(role, f"kms:{a}", self.key_arn(key), context, why) for a in actions]

    def secret_read(self, role: str, secret_id: str, why: str) -> list[Request]:
        arn = self.secret_arn(secret_id)
        return [Request(role, "secretsmanager:GetSecretValue", arn, why=why),
                *self.kms(role, self.secret_keys.get(self.secret_name(secret_id)), "secretsmanager", ("Decrypt",),
                          f"{why}: the secret is encrypted with a customer managed key")]

    def pass_roles(self, role: str, roles: list[str], why: str) -> list[Request]:
        return [Request(role, "iam:PassRole", r, (("iam:PassedToService", "ecs-tasks.amazonaws.com"),), why) for r in roles]

    # -- the mapping
    def requests(self, call: Call) -> list[Request]:
        handler: Callable[[Call], list[Request]] | None = getattr(self, f"_{call.service.replace('-', '_')}", None)
        if handler is None:
            raise LookupError(f"no IAM mapping for service {call.service} (operation {call.operation}): add it to {__name__}")
        return handler(call)

    def _unmapped(self, call: Call) -> list[Request]:
        raise LookupError(f"no IAM mapping for {call.service}:{call.operation}: add it to {__name__}")

    def _sts(self, call: Call) -> list[Request]:
        if call.operation == "GetCallerIdentity":
            return []  # needs no permission
        return self._unmapped(call)

    def _dynamodb(self, call: Call) -> list[Request]:
        p = call.params
        table = _arn("dynamodb", f"table/{p['TableName']}")
        if p.get("IndexName"):
            table += f"/index/{p['IndexName']}"
        return [Request(call.role, f"dynamodb:{call.operation}", table, why=call.operation)]

    def _ecs(self, call: Call) -> list[Request]:
        p, op, role = call.params, call.operation, call.role
        cluster = self.cluster_name(p)
        action = f"ecs:{op}"
        tags_on_create = (("ecs:CreateAction", op),)
        if op in ("CreateService", "UpdateService", "DeleteService"):
            service = p.get("serviceName") or p.get("service")
            arn = _arn("ecs", f"service/{cluster}/{str(service).rsplit('/', 1)[-1]}")
            found = [Request(role, action, arn, why=op)]
            if p.get("tags"):
                found.append(Request(role, "ecs:TagResource", arn, tags_on_create, f"{op} with tags"))
            if p.get("taskDefinition"):
                found += self.pass_roles(role, self._roles_of(p["taskDefinition"]), f"{op} of a task definition with roles")
            return found
        if op == "DescribeServices":
            return [Request(role, action, _arn("ecs", f"service/{cluster}/{s.rsplit('/', 1)[-1]}"), why=op) for s in p["services"]]
        if op == "RunTask":
            definition = str(p["taskDefinition"])
            family = definition.rsplit("/", 1)[-1]
            arn = definition if definition.startswith("arn:") else _arn("ecs", f"task-definition/{family if ':' in family else family + ':1'}")
            found = [Request(role, action, arn, (("ecs:cluster", _arn("ecs", f"cluster/{cluster}")),), op)]
            if p.get("tags"):
                found.append(Request(role, "ecs:TagResource", _arn("ecs", f"task/{cluster}/0123456789abcdef"), tags_on_create, "RunTask with tags"))
            found += self.pass_roles(role, self._roles_of(definition), "RunTask of a task definition with roles")
            return found
        if op in ("StopTask", "DescribeTasks", "UpdateTaskProtection", "GetTaskProtection"):
            tasks = p.get("tasks") or [p.get("task")]
            return [Request(role, action, t if str(t).startswith("arn:") else _arn("ecs", f"task/{cluster}/{t}"),
                            (("ecs:cluster", _arn("ecs", f"cluster/{cluster}")),), op) for t in tasks]
        if op == "ListTasks":
            return [Request(role, action, _arn("ecs", f"container-instance/{cluster}/*"),
                            (("ecs:cluster", _arn("ecs", f"cluster/{cluster}")),), op)]
        if op == "RegisterTaskDefinition":
            family = p["family"]
            self.task_definitions[family] = p
            roles = [r for r in (p.get("taskRoleArn"), p.get("executionRoleArn")) if r]
            self.family_roles[family] = roles
            found = [Request(role, action, "*", why=op)]
            if p.get("tags"):
                found.append(Request(role, "ecs:TagResource", _arn("ecs", f"task-definition/{family}:1"), tags_on_create,
                                     "RegisterTaskDefinition with tags"))
            return found + self.pass_roles(role, roles, "RegisterTaskDefinition with a task role and an execution role")
        if op in ("DescribeTaskDefinition", "DeregisterTaskDefinition", "ListTaskDefinitions"):
            return [Request(role, action, "*", why=op)]
        if op in ("TagResource", "UntagResource"):
            return [Request(role, action, p["resourceArn"], why=op)]
        return self._unmapped(call)

    def _roles_of(self, definition: str) -> list[str]:
        family = str(definition).rsplit("/", 1)[-1].split(":", 1)[0]
        return self.family_roles.get(family, [])

    def _sqs(self, call: Call) -> list[Request]:
        p = call.params
        arn = _arn("sqs", self.queue_name(p))
        found = [Request(call.role, f"sqs:{call.operation}", arn, why=call.operation)]
        if call.operation == "CreateQueue" and p.get("tags"):
            found.append(Request(call.role, "sqs:TagQueue", arn, why="CreateQueue with tags"))
        return found

    def _secretsmanager(self, call: Call) -> list[Request]:
        p, op, role = call.params, call.operation, call.role
        if op == "CreateSecret":
            self.secret_keys[p["Name"]] = p.get("KmsKeyId") or ""
            arn = self.secret_arn(p["Name"])
            found = [Request(role, "secretsmanager:CreateSecret", arn, why=op)]
            if p.get("Tags"):
                found.append(Request(role, "secretsmanager:TagResource", arn, why="CreateSecret with tags"))
            return found + self.kms(role, p.get("KmsKeyId"), "secretsmanager", ("GenerateDataKey", "Decrypt"),
                                    "CreateSecret with a customer managed key")
        if op == "GetSecretValue":
            return self.secret_read(role, p["SecretId"], op)
        if op == "PutSecretValue":
            return [Request(role, "secretsmanager:PutSecretValue", self.secret_arn(p["SecretId"]), why=op),
                    *self.kms(role, self.secret_keys.get(self.secret_name(p["SecretId"])), "secretsmanager",
                              ("GenerateDataKey",), "PutSecretValue of a secret with a customer managed key")]
        if op in ("DescribeSecret", "DeleteSecret", "TagResource", "UpdateSecret"):
            return [Request(role, f"secretsmanager:{op}", self.secret_arn(p["SecretId"]), why=op)]
        return self._unmapped(call)

    def _logs(self, call: Call) -> list[Request]:
        p, op = call.params, call.operation
        if op == "DescribeLogGroups":
            return [Request(call.role, "logs:DescribeLogGroups", _arn("logs", "log-group:*"), why=op)]
        arn = _arn("logs", f"log-group:{p['logGroupName']}")
        found = [Request(call.role, f"logs:{op}", arn, why=op)]
        if op == "CreateLogGroup" and p.get("tags"):
            found.append(Request(call.role, "logs:TagResource", arn, why="CreateLogGroup with tags"))
        return found

    def _elbv2(self, call: Call) -> list[Request]:
        p, op, role = call.params, call.operation, call.role
        action = f"elasticloadbalancing:{op}"
        if op.startswith("Describe"):
            return [Request(role, action, "*", why=op)]
        if op == "CreateTargetGroup":
            arn = _arn("elasticloadbalancing", f"targetgroup/{p['Name']}/0123456789abcdef")
            found = [Request(role, action, arn, why=op)]
            if p.get("Tags"):
                found.append(Request(role, "elasticloadbalancing:AddTags", arn, (("elasticloadbalancing:CreateAction", op),),
                                     "CreateTargetGroup with tags"))
            return found
        if op in ("ModifyTargetGroup", "DeleteTargetGroup", "ModifyTargetGroupAttributes"):
            return [Request(role, action, p["TargetGroupArn"], why=op)]
        if op == "CreateRule":
            listener = p["ListenerArn"]
            rule = listener.replace(":listener/", ":listener-rule/") + "/0123456789abcdef"
            found = [Request(role, action, listener, why=op)]
            if p.get("Tags"):
                found.append(Request(role, "elasticloadbalancing:AddTags", rule, (("elasticloadbalancing:CreateAction", op),),
                                     "CreateRule with tags"))
            return found
        if op in ("DeleteRule", "ModifyRule", "SetRulePriorities"):
            return [Request(role, action, p.get("RuleArn") or p["RulePriorities"][0]["RuleArn"], why=op)]
        if op == "AddTags":
            return [Request(role, action, arn, why=op) for arn in p["ResourceArns"]]
        return self._unmapped(call)

    def _servicediscovery(self, call: Call) -> list[Request]:
        p, op, role = call.params, call.operation, call.role
        if op == "CreateService":
            namespace = _arn("servicediscovery", f"namespace/{p['NamespaceId']}")
            found = [Request(role, "servicediscovery:CreateService", namespace, why=op)]
            if p.get("Tags"):
                found.append(Request(role, "servicediscovery:TagResource", _arn("servicediscovery", "service/srv-0123456789"),
                                     why="CreateService with tags"))
            return found
        if op in ("GetService", "DeleteService", "UpdateService"):
            return [Request(role, f"servicediscovery:{op}", _arn("servicediscovery", f"service/{p['Id']}"), why=op)]
        if op in ("ListServices", "ListNamespaces", "GetNamespace"):
            return [Request(role, f"servicediscovery:{op}", "*", why=op)]
        return self._unmapped(call)

    def _rds_data(self, call: Call) -> list[Request]:
        p = call.params
        if call.operation not in ("ExecuteStatement", "BatchExecuteStatement"):
            return self._unmapped(call)
        return [Request(call.role, f"rds-data:{call.operation}", p["resourceArn"], why=call.operation),
                *self.secret_read(call.role, p["secretArn"], "the Data API reads the statement's secret as the caller")]

    def _events(self, call: Call) -> list[Request]:
        if call.operation != "PutEvents":
            return self._unmapped(call)
        buses = {e.get("EventBusName") or "default" for e in call.params["Entries"]}
        return [Request(call.role, "events:PutEvents", b if b.startswith("arn:") else _arn("events", f"event-bus/{b}"), why="PutEvents")
                for b in sorted(buses)]

    def _stepfunctions(self, call: Call) -> list[Request]:
        p, op = call.params, call.operation
        if op == "StartExecution":
            return [Request(call.role, "states:StartExecution", p["stateMachineArn"], why=op)]
        if op in ("DescribeExecution", "StopExecution"):
            return [Request(call.role, f"states:{op}", p["executionArn"], why=op)]
        return self._unmapped(call)

    def _lambda(self, call: Call) -> list[Request]:
        if call.operation != "Invoke":
            return self._unmapped(call)
        name = call.params["FunctionName"]
        return [Request(call.role, "lambda:InvokeFunction", name if name.startswith("arn:") else _arn("lambda", f"function:{name}"),
                        why="Invoke")]

    def _cloudwatch(self, call: Call) -> list[Request]:
        if call.operation == "PutMetricData":
            return [Request(call.role, "cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", call.params["Namespace"]),),
                            "PutMetricData")]
        if call.operation in ("GetMetricData", "GetMetricStatistics", "ListMetrics"):
            return [Request(call.role, f"cloudwatch:{call.operation}", "*", why=call.operation)]
        return self._unmapped(call)

    def _s3(self, call: Call) -> list[Request]:
        p, op, role = call.params, call.operation, call.role
        bucket = f"arn:{PARTITION}:s3:::{p['Bucket']}"
        versioned = bool(p.get("VersionId"))
        by_operation = {
            "HeadBucket": ("s3:ListBucket", bucket), "ListObjectsV2": ("s3:ListBucket", bucket),
            "ListObjects": ("s3:ListBucket", bucket), "ListObjectVersions": ("s3:ListBucketVersions", bucket),
            "GetBucketVersioning": ("s3:GetBucketVersioning", bucket),
            "HeadObject": ("s3:GetObjectVersion" if versioned else "s3:GetObject", f"{bucket}/{p.get('Key')}"),
            "GetObject": ("s3:GetObjectVersion" if versioned else "s3:GetObject", f"{bucket}/{p.get('Key')}"),
            "PutObject": ("s3:PutObject", f"{bucket}/{p.get('Key')}"),
        }
        if op not in by_operation:
            return self._unmapped(call)
        action, arn = by_operation[op]
        return [Request(role, action, arn, why=op)]

    def _ec2(self, call: Call) -> list[Request]:
        if call.operation.startswith("Describe"):
            return [Request(call.role, f"ec2:{call.operation}", "*", why=call.operation)]
        return self._unmapped(call)

    def _ecr(self, call: Call) -> list[Request]:
        if call.operation == "DescribeImages":
            p = call.params
            return [Request(call.role, "ecr:DescribeImages",
                            _arn("ecr", f"repository/{p['repositoryName']}", account=p.get("registryId") or ACCOUNT), why="DescribeImages")]
        return self._unmapped(call)

    def _iam(self, call: Call) -> list[Request]:
        p, op = call.params, call.operation
        if op == "SimulatePrincipalPolicy":
            return [Request(call.role, "iam:SimulatePrincipalPolicy", p["PolicySourceArn"], why=op)]
        if op == "GetRole":
            return [Request(call.role, "iam:GetRole", f"arn:{PARTITION}:iam::{ACCOUNT}:role/{p['RoleName']}", why=op)]
        return self._unmapped(call)

    def _kms(self, call: Call) -> list[Request]:
        if call.operation == "DescribeKey":
            return [Request(call.role, "kms:DescribeKey", self.key_arn(call.params["KeyId"]), why="DescribeKey")]
        return self._unmapped(call)

    # -- what ECS does with the task execution role for each task definition
    def execution_role_requests(self) -> list[Request]:
        found: list[Request] = []
        for family, definition in self.task_definitions.items():
            why = f"ECS starting a task of {family}"
            for container in definition.get("containerDefinitions", []):
                image = str(container.get("image", ""))
                match = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)", image)
                if match:
                    repository = _arn("ecr", f"repository/{match[3]}", region=match[2], account=match[1])
                    found.append(Request(TASK_EXECUTION, "ecr:GetAuthorizationToken", "*", why=why))
                    found += [Request(TASK_EXECUTION, f"ecr:{a}", repository, why=f"{why}: pulling {image}")
                              for a in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage")]
                for secret in container.get("secrets", []):
                    arn = str(secret["valueFrom"])
                    arn = ":".join(arn.split(":")[:7])  # without the :json-key:version-stage:version-id suffix
                    found += self.secret_read(TASK_EXECUTION, arn, f"{why}: secret {secret['name']}")
                options = (container.get("logConfiguration") or {}).get("options") or {}
                if options.get("awslogs-group"):
                    group = _arn("logs", f"log-group:{options['awslogs-group']}:log-stream:x")
                    found += [Request(TASK_EXECUTION, f"logs:{a}", group, why=f"{why}: awslogs")
                              for a in ("CreateLogStream", "PutLogEvents")]
        return found


# ---------------------------------------------------------------------------- the template's policies


class Resolver:
    """CloudFormation intrinsics of the transformed template, resolved with a stack's names."""

    def __init__(self, template: dict[str, Any], physical: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
        self.template = template
        self.physical = physical
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
                       "AWS::StackName": STACK_NAME, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            spec = self.template["Parameters"][name]
            value = self.parameters[name]
            return [v for v in value.split(",")] if spec["Type"].startswith(("List<", "CommaDelimitedList")) else value
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"no physical id for Ref {name}: add it to the stack's names (support/iam_rehearsal.py)")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        (key, arg), = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else arg
            if name not in self.physical:
                raise KeyError(f"no value for Fn::GetAtt {name}: add it to the stack's names (support/iam_rehearsal.py)")
            return self.physical[name]
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name:
                    return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
                return str(self.ref(name))

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in self.resolve(arg[1]) if v is not None)
        if key == "Fn::Select":
            return self.resolve(arg[1])[int(self.resolve(arg[0]))]
        if key == "Fn::Split":
            return str(self.resolve(arg[1])).split(arg[0])
        if key == "Fn::Equals":
            return self.resolve(arg[0]) == self.resolve(arg[1])
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        return {key: self.resolve(arg)}


# AWS managed policies SAM attaches, with their documented content.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                       "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                                       "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                       "ec2:UnassignPrivateIpAddresses"], "Resource": "*"}],
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                                       "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents",
                                       "logs:FilterLogEvents"], "Resource": "*"}],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                       "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": "*"}],
}


def role_statements(template: dict[str, Any], resolver: Resolver) -> dict[str, list[dict[str, Any]]]:
    """Role logical id -> every statement that applies to it (inline, managed, attached)."""
    roles: dict[str, list[dict[str, Any]]] = {}
    resources = template["Resources"]
    managed_in_template = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        props = resource["Properties"]
        statements: list[dict[str, Any]] = []
        for policy in props.get("Policies", []):
            statements += _as_list(resolver.resolve(policy["PolicyDocument"])["Statement"])
        for arn in props.get("ManagedPolicyArns", []):
            if isinstance(arn, dict) and "Ref" in arn and arn["Ref"] in managed_in_template:
                statements += _as_list(resolver.resolve(managed_in_template[arn["Ref"]]["Properties"]["PolicyDocument"])["Statement"])
                continue
            arn = resolver.resolve(arn)
            if arn not in MANAGED_POLICIES:
                raise KeyError(f"{name} uses the managed policy {arn}, whose content is not known here")
            statements += MANAGED_POLICIES[arn]
        roles[name] = statements
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for role in resource["Properties"].get("Roles", []):
                if isinstance(role, dict) and "Ref" in role:
                    roles.setdefault(role["Ref"], []).extend(
                        _as_list(resolver.resolve(resource["Properties"]["PolicyDocument"])["Statement"]))
    # The environment's own role: the user's, with the managed policy the template offers for it.
    for name, resource in managed_in_template.items():
        if name == "EnvironmentExecutionPolicy":
            roles[ENVIRONMENT_TASK] = _as_list(resolver.resolve(resource["Properties"]["PolicyDocument"])["Statement"])
    return roles


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    # IAM wildcards: * any run of characters, ? one character; nothing else is special.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            values = [str(v) for v in _as_list(expected)]
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual is not None and actual in values
            elif operator == "StringEqualsIgnoreCase":
                ok = actual is not None and actual.lower() in [v.lower() for v in values]
            elif operator in ("StringLike", "ArnLike"):
                ok = actual is not None and any(_matches(v, actual) for v in values)
            elif operator == "StringNotEquals":
                ok = actual is None or actual not in values
            elif operator == "Bool":
                ok = actual is not None and actual.lower() in [v.lower() for v in values]
            else:
                raise ValueError(f"condition operator {operator} is not evaluated here: add it to {__name__}")
            if not ok:
                return False
    return True


def _statement_matches(statement: dict[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_matches(a, request.action, case_sensitive=False) for a in _as_list(statement["Action"])):
            return False
    elif any(_matches(a, request.action, case_sensitive=False) for a in _as_list(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_matches(str(r), request.resource) for r in _as_list(statement["Resource"]) if r is not None):
            return False
    elif any(_matches(str(r), request.resource) for r in _as_list(statement.get("NotResource", []))):
        return False
    return _condition_holds(statement.get("Condition", {}), dict(request.context))


def allowed(statements: list[dict[str, Any]], request: Request) -> bool:
    if any(s.get("Effect") == "Deny" and _statement_matches(s, request) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _statement_matches(s, request) for s in statements)


def stack_names(stack: Any) -> dict[str, Any]:
    """Physical ids of the template's resources, as the moto stack (tests/aws/conftest.py) has them."""
    env = stack.environ
    namespace = env["AIRDOCK_DISCOVERY_NAMESPACE_ID"]
    cluster = env["AIRDOCK_ECS_CLUSTER"]
    machines = {kind: _arn("states", f"stateMachine:{STACK_NAME}-{kind.lower()}-environment")
                for kind in ("Create", "Update", "Delete")}
    names: dict[str, Any] = {
        "EnvironmentsTable": env.get("AIRDOCK_TABLE_NAME", "airdock-environments"),
        "EnvironmentsTable.Arn": _arn("dynamodb", f"table/{env.get('AIRDOCK_TABLE_NAME', 'airdock-environments')}"),
        "EnvironmentsCluster": cluster, "EnvironmentsCluster.Arn": _arn("ecs", f"cluster/{cluster}"),
        "ServiceDiscoveryNamespace": namespace, "ServiceDiscoveryNamespace.Id": namespace,
        "ServiceDiscoveryNamespace.Arn": _arn("servicediscovery", f"namespace/{namespace}"),
        "MetadataCluster": "airdock-metadata", "MetadataCluster.DBClusterArn": env["AIRDOCK_DB_CLUSTER_ARN"],
        "MetadataCluster.MasterUserSecret.SecretArn": env["AIRDOCK_DB_ADMIN_SECRET_ARN"],
        "MetadataCluster.Endpoint.Address": env["AIRDOCK_DB_HOST"],
        "InternalListener": env["AIRDOCK_PRIVATE_LISTENER_ARN"],
        "TaskExecutionRole": "airdock-task-execution", "TaskExecutionRole.Arn": env["AIRDOCK_TASK_EXECUTION_ROLE_ARN"],
        "LifecycleFunction": f"{STACK_NAME}-lifecycle", "LifecycleFunction.Arn": _arn("lambda", f"function:{STACK_NAME}-lifecycle"),
        "ProvisionerFunction": f"{STACK_NAME}-provisioner",
        "ProvisionerFunction.Arn": _arn("lambda", f"function:{STACK_NAME}-provisioner"),
        "AlarmTopic": _arn("sns", "airdock-alarms"),
        "LifecycleFailureQueue": _arn("sqs", "airdock-lifecycle-failures"),
        "LifecycleFailureQueue.Arn": _arn("sqs", "airdock-lifecycle-failures"),
        "MwaaApi": "abc123",
        # MWAA Serverless
        "WorkflowsTable": "airdock-workflows", "WorkflowsTable.Arn": _arn("dynamodb", "table/airdock-workflows"),
        "ServerlessArtifactsBucket": "airdock-serverless-artifacts",
        "ServerlessArtifactsBucket.Arn": "arn:aws:s3:::airdock-serverless-artifacts",
        "ServerlessEngineSecret": _arn("secretsmanager", "secret:airdock/serverless-engine"),
        "ServerlessEngineSecurityGroup": "sg-0serverless", "ServerlessEngineDiscovery": "srv-serverless",
        "ServerlessEngineDiscovery.Arn": _arn("servicediscovery", "service/srv-serverless"),
        "ServerlessEngineTaskRole": "airdock-serverless-engine",
        "ServerlessEngineTaskRole.Arn": _arn("iam", "role/airdock-serverless-engine", region=""),
        "ServerlessEngineTaskDefinition": _arn("ecs", "task-definition/airdock-serverless-engine:1"),
        "ServerlessTaskDefinition": _arn("ecs", "task-definition/airdock-serverless-task:1"),
        "ServerlessTaskLogGroup": "/airdock/serverless-tasks",
        "ServerlessTaskLogGroup.Arn": _arn("logs", "log-group:/airdock/serverless-tasks"),
        "ServerlessApiFunction": f"{STACK_NAME}-serverless-api",
        "ServerlessReconcileFunction": f"{STACK_NAME}-serverless-reconcile",
        "ApiFunctionSecurityGroup": "sg-0api",
    }
    for kind, arn in machines.items():
        names[f"{kind}EnvironmentStateMachine"] = arn
        names[f"{kind}EnvironmentStateMachine.Name"] = arn.rsplit(":", 1)[-1]
        names[f"{kind}EnvironmentStateMachine.Arn"] = arn
    for name, value in env.items():
        names.setdefault(name, value)
    return names


def default_names() -> dict[str, Any]:
    """Names for a test without the moto stack (its calls name no stack resource but these)."""
    from types import SimpleNamespace

    return stack_names(SimpleNamespace(environ={
        "AIRDOCK_DISCOVERY_NAMESPACE_ID": "ns-0123456789", "AIRDOCK_ECS_CLUSTER": "airdock-environments",
        "AIRDOCK_DB_CLUSTER_ARN": _arn("rds", "cluster:airdock-metadata"),
        "AIRDOCK_DB_ADMIN_SECRET_ARN": _arn("secretsmanager", "secret:rds!cluster-admin-AbCdEf"),
        "AIRDOCK_DB_HOST": "airdock-metadata.cluster-abc.us-east-1.rds.amazonaws.com",
        "AIRDOCK_PRIVATE_LISTENER_ARN": _arn("elasticloadbalancing", "listener/app/airdock-int/0123/4567"),
        "AIRDOCK_TASK_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/airdock-task-execution",
    }))


def denied_requests(calls: list[Call], names: dict[str, Any], parameters: dict[str, str] | None = None) -> tuple[list[str], int]:
    """The requests of `calls` no statement of their role allows (descriptions), and how many
    requests were checked."""
    template = transformed_template()
    resolver = Resolver(template, names, parameters)
    roles = role_statements(template, resolver)
    mapper = Mapper()
    requests: list[Request] = []
    for call in calls:
        requests += mapper.requests(call)
    requests += mapper.execution_role_requests()
    denied: list[str] = []
    for request in dict.fromkeys(requests):
        statements = roles.get(request.role)
        if statements is None:
            denied.append(f"{request.describe()}: the template has no role {request.role}")
        elif not allowed(statements, request):
            denied.append(f"{request.describe()}: no statement of {request.role} allows it")
    return denied, len(requests)


__all__ = ["API", "AUTOSCALER", "ENVIRONMENT_TASK", "LIFECYCLE", "PROVISIONER", "TASK_EXECUTION", "Call", "Recorder",
           "Request", "acting_as", "allowed", "default_names", "denied_requests", "recording", "stack_names"]
