"""Build one workflow version's DAG from its snapshot; called by the version's DAG file.

A version folder holds `dag.yaml` (the checked dag-factory definition, under the version's
dag_id), `env.json` (the workflow's Environment variables, mode 0600) and `code/` (the extracted
Code). The DAG file runs in the DAG processor's per-file process and in every task's own process
(Airflow 3 parses the DAG file there), so what it sets belongs to that process alone:

- the workflow's variables in `os.environ`, its code folder first on `sys.path`;
- BashOperator tasks run in the code folder (MWAA Serverless: the Bash working directory), and so
  do Python tasks;
- just before a task runs, the run's OverrideParameters become environment variables too.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# Platform secrets the task's own code has no business reading.
_PLATFORM_SECRETS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET",
                     "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRDOCK_ENGINE_UI_SECRET")


def prepare_process(version_dir: Path) -> dict[str, str]:
    """The version's variables and code folder, in this process."""
    env_file = version_dir / "env.json"
    variables: dict[str, str] = json.loads(env_file.read_text()) if env_file.is_file() else {}
    os.environ.update(variables)
    code = str(version_dir / "code")
    if os.path.isdir(code) and code not in sys.path:
        sys.path.insert(0, code)
    return variables


def _export_overrides(context: Any) -> None:
    dag_run = context.get("dag_run") if hasattr(context, "get") else None
    conf = getattr(dag_run, "conf", None) or {}
    for key, value in conf.items():
        if isinstance(key, str) and key:
            os.environ[key] = value if isinstance(value, str) else json.dumps(value)


def _before_task(code_dir: str, previous: Any) -> Any:
    def pre_execute(context: Any) -> None:
        for name in _PLATFORM_SECRETS:
            os.environ.pop(name, None)
        _export_overrides(context)
        if os.path.isdir(code_dir):
            os.chdir(code_dir)
        if previous is not None:
            previous(context)

    return pre_execute


def executor_config(meta: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"overrides": {"taskRoleArn": meta["role_arn"]}}
    network = meta.get("network") or {}
    if network.get("SubnetIds") or network.get("SecurityGroupIds"):
        config["networkConfiguration"] = {"awsvpcConfiguration": {
            k: v for k, v in (("subnets", network.get("SubnetIds")), ("securityGroups", network.get("SecurityGroupIds")))
            if v}}
    return config


def load_version(version_dir: str | Path, namespace: dict[str, Any]) -> None:
    from dagfactory import load_yaml_dags

    folder = Path(version_dir)
    prepare_process(folder)
    before = set(namespace)
    load_yaml_dags(globals_dict=namespace, config_filepath=str(folder / "dag.yaml"))
    code_dir = str(folder / "code")
    meta_file = folder / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    for name in set(namespace) - before:
        dag = namespace[name]
        for task in getattr(dag, "tasks", []):
            if meta.get("role_arn") and os.environ.get("AIRFLOW__CORE__EXECUTOR", "").endswith("AwsEcsExecutor"):
                # Airflow's ECS executor merges executor_config into RunTask: each task runs as
                # the workflow's role, in the workflow's subnets and security groups if it has them.
                task.executor_config = executor_config(meta)
            if type(task).__name__ == "BashOperator" and getattr(task, "cwd", None) is None and os.path.isdir(code_dir):
                task.cwd = code_dir
            task._pre_execute_hook = _before_task(code_dir, getattr(task, "_pre_execute_hook", None))
