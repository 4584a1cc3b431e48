"""Draining a Celery worker on AWS, under moto: the autoscaler's ECS worker pool writes a drain
marker for exactly the chosen task into the environment's metadata database (RDS Data API, the
environment's own secret), before it tags the task; taking the worker back removes it, and so does
the task's end (release, then the autoscaler's prune of stopped or forgotten tasks). The worker's
side — its entrypoint polling the marker and warm-shutting Celery down — is
tests/unit/test_entrypoint_drain.py."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from airdock.aws import naming
from airdock_runtime import drain as worker_drain
from airdock.aws.worker_pool import DRAINING_TAG
from airdock.core import autoscaling
from airdock.core.ports import EnvironmentRecord
from aws.test_autoscaler_aws import CLUSTER, Repo, aws_env, ecs_scheduler, hostname, run_tick, running_tasks  # noqa: F401
from aws.test_web_front_aws import _container, _services


def _tags(stack: Any, env: str) -> dict[str, set[str]]:
    return {t["taskArn"]: {x["key"] for x in t.get("tags", [])} for t in running_tasks(stack, env)}


def test_a_scale_in_marks_exactly_the_drained_tasks_in_the_environments_database(aws_env: Any) -> None:
    stack, env, db = aws_env
    config = autoscaling.AutoscalingConfig(scale_in_stabilization_s=0)
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"), desiredCount=3)
    ecs_scheduler(stack, env.Name)
    busy, *idle = running_tasks(stack, env.Name)
    db.running = {hostname(busy): 2}
    decision = run_tick(stack, env, datetime.now(timezone.utc).timestamp(), config)
    assert set(decision.drain) == {t["taskArn"] for t in idle}
    assert set(db.drain_markers) == {t["taskArn"] for t in idle}
    marks = [s for s in db.statements if s["sql"] == worker_drain.MARK_SQL]
    assert {s["database"] for s in marks} == {naming.pg_identifier(env.Name, "db")}
    assert all(s["secretArn"].split(":secret:")[1].startswith(naming.secret_name(env.Name, "database")) for s in marks)
    # The table exists before the first marker is written.
    sqls = [s["sql"] for s in db.statements]
    assert sqls.index(worker_drain.CREATE_SQL) < sqls.index(worker_drain.MARK_SQL)


def test_a_failed_marker_leaves_the_worker_undrained_so_the_next_tick_decides_again(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    task = running_tasks(stack, env.Name)[0]["taskArn"]

    def unreachable(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database unreachable")

    pool.markers.execute = unreachable
    with pytest.raises(RuntimeError):
        pool.drain(env.Name, task)  # recorded in the decision's errors by autoscaling.apply
    assert DRAINING_TAG not in _tags(stack, env.Name)[task]  # not counted as draining yet


def test_taking_a_worker_back_removes_its_marker_then_its_tag(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    task = running_tasks(stack, env.Name)[0]["taskArn"]
    pool.drain(env.Name, task)
    pool.drain(env.Name, task)  # a repeated decision keeps the first marker and timestamp
    assert list(db.drain_markers) == [task] and DRAINING_TAG in _tags(stack, env.Name)[task]
    assert pool.resume(env.Name, task) is True
    assert db.drain_markers == {} and DRAINING_TAG not in _tags(stack, env.Name)[task]


def test_only_worker_tasks_poll_their_drain_marker(aws_env: Any) -> None:
    stack, env, _db = aws_env
    for component, service in _services(stack, env.Name).items():
        variables = {v["name"]: v["value"] for v in _container(stack, service)["environment"]}
        assert ("AIRDOCK_DRAIN_POLL_S" in variables) == (component == "worker"), component
    worker = {v["name"]: v["value"] for v in _container(stack, _services(stack, env.Name)["worker"])["environment"]}
    assert float(worker["AIRDOCK_DRAIN_POLL_S"]) > 0


def test_a_released_workers_marker_stays_until_its_task_has_stopped_then_is_pruned(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    stack.client("ecs").update_service(cluster=CLUSTER, service=naming.service_name(env.Name, "worker"), desiredCount=2)
    ecs_scheduler(stack, env.Name)
    released, kept = (t["taskArn"] for t in running_tasks(stack, env.Name))
    pool.drain(env.Name, released)
    pool.drain(env.Name, kept)
    # Released while up: the marker keeps it drained until ECS has stopped it (no Celery restart
    # between the marker's removal and the task's SIGTERM).
    assert pool.release(env.Name, released) is True
    assert set(db.drain_markers) == {released, kept}
    # Stopped now (moto stops at once): the next prune deletes its marker, not the draining one's.
    pool.tidy(env.Name)
    assert set(db.drain_markers) == {kept}


def test_pruning_deletes_markers_of_tasks_that_no_longer_exist_but_not_one_written_meanwhile(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    gone = f"arn:aws:ecs:{stack.settings.region}:{stack.settings.account_id}:task/{CLUSTER}/0123456789abcdef"
    pool.markers.mark(env.Name, gone, 1.0)  # its task stopped long ago; ECS has forgotten it
    listed_at = pool.clock()
    pool.clock = lambda: listed_at
    # A tick drains a task ECS started after this prune listed the tasks: its marker is newer.
    pool.markers.mark(env.Name, "arn:aws:ecs:task/just-started", listed_at + 1)
    pool.tidy(env.Name)
    assert list(db.drain_markers) == ["arn:aws:ecs:task/just-started"]
    # The table exists before the first delete, as before the first marker.
    sqls = [s["sql"] for s in db.statements]
    prunes = [i for i, sql in enumerate(sqls) if sql.startswith(worker_drain.PRUNE_SQL)]
    assert prunes and sqls.index(worker_drain.CREATE_SQL) < prunes[0]


def test_force_releasing_a_drained_worker_that_already_stopped_deletes_its_marker_at_once(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    task = running_tasks(stack, env.Name)[0]["taskArn"]
    pool.drain(env.Name, task)
    stack.client("ecs").stop_task(cluster=CLUSTER, task=task, reason="OutOfMemoryError")  # it crashed
    assert pool.release(env.Name, task, force=True) is True
    assert db.drain_markers == {}


def test_every_autoscaler_run_prunes_the_markers_of_available_environments_only(aws_env: Any) -> None:
    stack, env, db = aws_env
    _metrics, pool, _ = (stack.metrics(), stack.worker_pool(), None)
    task = running_tasks(stack, env.Name)[0]["taskArn"]
    pool.drain(env.Name, task)
    stack.client("ecs").stop_task(cluster=CLUSTER, task=task, reason="OutOfMemoryError")
    updating = env.model_copy(update={"Status": "UPDATING"})
    metrics, config = stack.metrics(), autoscaling.AutoscalingConfig()
    autoscaling.Autoscaler(Repo(EnvironmentRecord(environment=updating)), metrics, pool, config).run()
    assert list(db.drain_markers) == [task]
    autoscaling.Autoscaler(Repo(EnvironmentRecord(environment=env)), metrics, pool, config).run()
    assert db.drain_markers == {}
