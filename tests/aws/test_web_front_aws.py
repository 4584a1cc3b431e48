"""The web front on AWS, under moto: its ECS service behind the environment's target group, its
token key in Secrets Manager (created once, injected into its task only), the webserver found by
Cloud Map DNS, the listener rules, and the control plane signing tokens the front accepts."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from airdock.aws import naming
from airdock_runtime import tokens
from airdock.core.ports import Caller, EnvironmentRecord
from airdock.aws.web import SSO_HEALTH_PATH
from aws.conftest import ACCOUNT, Stack
from aws.test_adapters import _services, _up, environment
from support.web_front import serving

LISTENER = "AIRDOCK_PRIVATE_LISTENER_ARN"


def _container(stack: Stack, service: dict[str, Any]) -> dict[str, Any]:
    definition = stack.client("ecs").describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    return dict(definition["containerDefinitions"][0], cpu=definition["cpu"], memory=definition["memory"])


def test_the_web_front_is_a_service_in_the_target_group_proxying_to_the_webserver_by_cloud_map(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    services = _services(stack, "analytics")
    front = services["web-front"]
    assert front["desiredCount"] == 1
    group = stack.client("elbv2").describe_target_groups(Names=[naming.target_group_name("analytics")])["TargetGroups"][0]
    assert front["loadBalancers"] == [{"targetGroupArn": group["TargetGroupArn"], "containerName": "airflow",
                                       "containerPort": 8080}]
    assert group["HealthCheckPath"] == "/aws_mwaa/aws-console-sso"

    container = _container(stack, front)
    assert container["image"].endswith("/airdock-airflow:3.3.2")  # the same image as every component
    assert (container["cpu"], container["memory"]) == ("256", "1024")
    variables = {v["name"]: v["value"] for v in container["environment"]}
    assert container["command"] == ["web-front"]
    assert variables["AIRDOCK_ENVIRONMENT_NAME"] == "analytics"
    assert variables["AIRDOCK_WEB_FRONT_PORT"] == "8080"
    assert variables["AIRDOCK_WEB_UPSTREAM"] == "http://analytics-webserver.airdock.internal:8080"
    assert variables["AIRDOCK_AIRFLOW_MAJOR"] == "3"
    assert container["portMappings"][0]["containerPort"] == 8080

    # The webserver registers into the Cloud Map service whose DNS name is that upstream.
    discovery = stack.client("servicediscovery").list_services()["Services"]
    assert [s["Name"] for s in discovery] == ["analytics-webserver"]
    assert services["webserver"]["serviceRegistries"] == [{"registryArn": discovery[0]["Arn"]}]
    assert compute.discovery.hostname("analytics") == "analytics-webserver.airdock.internal"


def test_the_token_key_is_one_secret_created_once_and_given_to_the_web_front_only(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    sm = stack.client("secretsmanager")
    first = json.loads(sm.get_secret_value(SecretId="airdock/analytics/web-front")["SecretString"])
    _up(stack, env, compute)
    compute.replace(env, "GRACEFUL", lambda _m: None)
    again = json.loads(sm.get_secret_value(SecretId="airdock/analytics/web-front")["SecretString"])
    assert again == first and len(first["token_key"]) >= 43  # 256 bits, never regenerated
    assert len([s for s in sm.list_secrets()["SecretList"] if s["Name"] == "airdock/analytics/web-front"]) == 1

    services = _services(stack, "analytics")
    front = {s["name"]: s["valueFrom"] for s in _container(stack, services["web-front"])["secrets"]}
    arn = sm.describe_secret(SecretId="airdock/analytics/web-front")["ARN"]
    assert front["AIRDOCK_TOKEN_KEY"] == f"{arn}:token_key::"
    assert front["AIRDOCK_JWT_SECRET"].endswith(":jwt_secret::")
    for component in ("scheduler", "webserver", "worker", "triggerer", "dag-processor"):
        names = {s["name"] for s in _container(stack, services[component])["secrets"]}
        assert "AIRDOCK_TOKEN_KEY" not in names, component


def test_path_routing_sends_the_environment_and_its_aws_mwaa_paths_to_the_web_front_first(stack: Stack) -> None:
    sent: list[dict[str, Any]] = []
    stack.client("elbv2").meta.events.register(
        "provide-client-params.elastic-load-balancing-v2.CreateRule", lambda params, **_: sent.append(dict(params)))
    env = environment(stack)
    compute = _up(stack, env)
    compute.web.ensure(env, SSO_HEALTH_PATH)  # again: nothing more
    elb = stack.client("elbv2")
    group = elb.describe_target_groups(Names=[naming.target_group_name("analytics")])["TargetGroups"][0]["TargetGroupArn"]
    rules = {tuple(r["Conditions"][0]["PathPatternConfig"]["Values"]): r
             for r in elb.describe_rules(ListenerArn=stack.environ[LISTENER])["Rules"] if not r["IsDefault"]}
    assert set(rules) == {("/analytics/aws_mwaa/*",), ("/analytics/*", "/analytics")}
    assert all(r["Actions"][0]["TargetGroupArn"] == group for r in rules.values())
    assert int(rules[("/analytics/aws_mwaa/*",)]["Priority"]) < int(rules[("/analytics/*", "/analytics")]["Priority"])
    # The web front serves /aws_mwaa/* at its root: the ALB rewrites the environment prefix away.
    assert len(sent) == 2
    front = next(p for p in sent if p["Conditions"][0]["PathPatternConfig"]["Values"] == ["/analytics/aws_mwaa/*"])
    assert front["Transforms"] == [{"Type": "url-rewrite", "UrlRewriteConfig": {"Rewrites": [
        {"Regex": "^/analytics/aws_mwaa/(.*)$", "Replace": "/aws_mwaa/$1"}]}}]
    assert compute.webserver_hostname(env) == f"{stack.environ['AIRDOCK_PRIVATE_ALB_DNS']}/analytics"


def test_host_routing_needs_one_rule_and_no_rewrite(stack: Stack) -> None:
    stack.environ["AIRDOCK_WEB_DOMAIN"] = "airflow.example.com"
    env = environment(stack)
    compute = _up(stack, env)
    rules = [r for r in stack.client("elbv2").describe_rules(ListenerArn=stack.environ[LISTENER])["Rules"]
             if not r["IsDefault"]]
    assert len(rules) == 1
    assert rules[0]["Conditions"][0]["HostHeaderConfig"]["Values"] == ["analytics.airflow.example.com"]
    assert compute.webserver_hostname(env) == "analytics.airflow.example.com"


def test_destroy_removes_the_web_front_its_secret_rules_and_discovery(stack: Stack) -> None:
    env = environment(stack)
    compute = _up(stack, env)
    compute.destroy(env)
    compute.destroy(env)
    assert "web-front" not in _services(stack, "analytics")
    assert stack.client("ecs").list_task_definitions(familyPrefix="airdock-analytics-web-front",
                                                     status="ACTIVE")["taskDefinitionArns"] == []
    assert not [s for s in stack.client("secretsmanager").list_secrets()["SecretList"]
                if s["Name"] == "airdock/analytics/web-front"]
    assert stack.client("servicediscovery").list_services()["Services"] == []
    assert [r for r in stack.client("elbv2").describe_rules(ListenerArn=stack.environ[LISTENER])["Rules"]
            if not r["IsDefault"]] == []


def test_the_control_plane_signs_tokens_with_the_key_the_web_front_is_given(stack: Stack) -> None:
    env = environment(stack, Status="AVAILABLE", WebserverUrl="internal-alb.example/analytics")
    _up(stack, env)
    plane = stack.data_plane()
    record = EnvironmentRecord(environment=env)
    root = Caller(access_key_id="AKIAROOT", principal_arn=f"arn:aws:iam::{ACCOUNT}:root")
    answer = plane.create_cli_token(record, root)
    assert answer["WebServerHostname"] == "internal-alb.example/analytics"
    key = json.loads(stack.client("secretsmanager").get_secret_value(
        SecretId="airdock/analytics/web-front")["SecretString"])["token_key"]
    claims = tokens.verify(key, answer["CliToken"], kind=tokens.CLI, environment="analytics")
    assert claims.role == "Admin"
    web = plane.create_web_login_token(record, root)
    assert tokens.verify(key, web["WebToken"], kind=tokens.WEB, environment="analytics").role == "Admin"


def _variables(stack: Stack, service: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in _container(stack, service)["environment"]}


def test_with_path_routing_airflow_and_the_web_front_share_the_environments_prefix(stack: Stack) -> None:
    _up(stack, environment(stack))
    services = _services(stack, "analytics")
    dns = stack.environ["AIRDOCK_PRIVATE_ALB_DNS"]
    for component in ("web-front", "webserver", "scheduler", "worker"):
        variables = _variables(stack, services[component])
        assert variables["AIRFLOW__API__BASE_URL"] == f"http://{dns}/analytics", component
        if component in ("web-front", "webserver"):  # the two that serve under the prefix
            assert variables["AIRDOCK_WEB_BASE_PATH"] == "/analytics", component


def test_with_host_routing_there_is_no_prefix(stack: Stack) -> None:
    stack.environ["AIRDOCK_WEB_DOMAIN"] = "airflow.example.com"
    _up(stack, environment(stack, AirflowVersion="2.11.0"))
    variables = _variables(stack, _services(stack, "analytics")["web-front"])
    assert variables["AIRFLOW__WEBSERVER__BASE_URL"] == "http://analytics.airflow.example.com"
    assert variables["AIRDOCK_WEB_BASE_PATH"] == ""


class _Echo(BaseHTTPRequestHandler):
    """The Airflow API server behind the web front: answers with the path it was asked for."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "proto": self.headers.get_all("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _task_environment(stack: Stack, container: dict[str, Any]) -> dict[str, str]:
    """What ECS gives the container: its variables, and each secret's JSON key resolved."""
    environ = {v["name"]: v["value"] for v in container["environment"]}
    for secret in container["secrets"]:
        arn, key, _stage, _version = secret["valueFrom"].rsplit(":", 3)
        value = stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        environ[secret["name"]] = json.loads(value)[key]
    return environ


def test_a_web_front_started_from_its_task_definition_signs_a_browser_in_under_the_path_prefix_behind_https(
        stack: Stack, metadata_database: str) -> None:
    env = environment(stack, Status="AVAILABLE", WebserverUrl="internal-alb.example/analytics")
    _up(stack, env)
    environ = _task_environment(stack, _container(stack, _services(stack, "analytics")["web-front"]))
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    # Only the addresses differ from ECS: the webserver's and the metadata database's, where the
    # front records the spent token (shared by every task: test_web_front_replay_aws.py).
    environ.update(AIRDOCK_WEB_UPSTREAM=f"http://127.0.0.1:{upstream.server_address[1]}",
                   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_database)
    plane = stack.data_plane()
    root = Caller(access_key_id="AKIAROOT", principal_arn=f"arn:aws:iam::{ACCOUNT}:root")
    try:
        with serving(environ) as url:
            # The ALB's health check and its rewrite reach the page at the root; it posts under the prefix.
            page = requests.get(url + "/aws_mwaa/aws-console-sso", timeout=10)
            assert 'action="/analytics/aws_mwaa/aws-console-sso"' in page.text
            token = plane.create_web_login_token(EnvironmentRecord(environment=env), root)["WebToken"]
            https = {"X-Forwarded-Proto": "https"}  # what the HTTPS listener adds
            signed_in = requests.post(url + "/analytics/aws_mwaa/aws-console-sso", data={"token": token}, headers=https,
                                      allow_redirects=False, timeout=10)
            assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/analytics/"
            cookie = signed_in.headers["Set-Cookie"]
            assert cookie.startswith("_token=") and "Path=/analytics/;" in cookie and cookie.endswith("; Secure")
            proxied = requests.get(url + "/analytics/api/v2/version", headers=https, timeout=10).json()
            assert proxied == {"path": "/analytics/api/v2/version", "proto": ["https"]}
    finally:
        upstream.shutdown()
