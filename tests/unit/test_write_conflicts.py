"""Specification: a change to an environment's record that loses a race with another writer
(optimistic concurrency) is made again on a fresh read, a bounded number of times; a record that
never stops changing ends the change with a clear error instead of a thread retrying forever.

On the real service and SQLite repository. The other writer is a real write through the same
repository that lands between the service's read and its conditional write.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airdock.core.conflicts import ATTEMPTS
from airdock.core.errors import ServiceUnavailable
from airdock.core.models import CreateEnvironmentInput
from airdock.core.settings import Settings
from airdock.core.validation import parse
from airdock.local.context import LocalContext

BUCKET = "conflicts"
NAME = "raced"
FOREVER = 10**9
# Far more lost races than any bound would allow: reaching it means the retries never stop.
RUNAWAY = 100


@pytest.fixture
def context(tmp_path: Path) -> Iterator[LocalContext]:
    ctx = LocalContext(tmp_path / "data", Settings(), provision=False)
    (ctx.data_dir / "buckets" / BUCKET / "dags").mkdir(parents=True)
    ctx.service.create_environment(parse(CreateEnvironmentInput, {
        "Name": NAME, "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}", "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    }))
    yield ctx
    ctx.close()


class OtherWriter:
    """Writes the record (a progress note) right before each of the service's next `times`
    writes, so each of those loses the race."""

    def __init__(self, context: LocalContext, monkeypatch: pytest.MonkeyPatch, times: int) -> None:
        self.repository = context.repository
        self.remaining = times
        self.writes = 0
        self._replace = self.repository.replace
        self._delete = self.repository.delete
        monkeypatch.setattr(self.repository, "replace", lambda record: self._before(record.name, self._replace, record))
        monkeypatch.setattr(self.repository, "delete", lambda name, version: self._before(name, self._delete, name, version))

    def _before(self, name: str, write: Callable[..., Any], *args: Any) -> Any:
        if self.remaining > 0:
            self.remaining -= 1
            self.writes += 1
            if self.writes > RUNAWAY:
                raise AssertionError(f"still retrying after {RUNAWAY} lost races")
            record = self.repository.get(name)
            assert record is not None
            record.internal["progress"] = f"other writer {self.writes}"
            self._replace(record)
        return write(*args)


def start_deleting(ctx: LocalContext) -> None:
    ctx.service.transition(NAME, "AVAILABLE")
    ctx.service.transition(NAME, "DELETING")


# The three read-change-write paths, each after its set-up: a plain change (tags), a status
# transition, and the delete's last step (the record goes).
CHANGES: dict[str, tuple[Callable[[LocalContext], None] | None, Callable[[LocalContext], Any]]] = {
    "tag": (None, lambda ctx: ctx.service.tag_resource(ctx.settings.environment_arn(NAME), {"team": "data"})),
    "transition": (None, lambda ctx: ctx.service.transition(NAME, "AVAILABLE")),
    "forget": (start_deleting, lambda ctx: ctx.service.forget(NAME)),
}


def race(ctx: LocalContext, change: str, monkeypatch: pytest.MonkeyPatch, times: int) -> OtherWriter:
    set_up, make = CHANGES[change]
    if set_up is not None:
        set_up(ctx)
    writer = OtherWriter(ctx, monkeypatch, times)
    make(ctx)
    return writer


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_that_loses_a_few_races_is_made_on_the_fresh_record(
        context: LocalContext, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    # Given another writer that wins the race against the change's first three writes
    # When the change is made
    writer = race(context, change, monkeypatch, times=3)
    # Then it was made on the fourth try, on top of the other writer's last write (nothing lost)
    assert writer.writes == 3
    record = context.repository.get(NAME)
    if change == "forget":
        assert record is None
        return
    assert record is not None and record.internal["progress"] == "other writer 3"
    if change == "tag":
        assert record.environment.Tags == {"team": "data"}
    else:
        assert record.environment.Status == "AVAILABLE"


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_that_keeps_losing_ends_after_the_bound_with_a_clear_error(
        context: LocalContext, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    # Given another writer that wins every race
    # When the change is made
    with pytest.raises(ServiceUnavailable) as raised:
        race(context, change, monkeypatch, times=FOREVER)
    # Then it gave up after a bounded number of tries, saying which environment and what to do
    assert raised.value.status == 503
    assert f"Environment {NAME} kept changing" in raised.value.message and "try again" in raised.value.message
    record = context.repository.get(NAME)
    assert record is not None  # the delete did not half-happen
    assert record.internal["progress"] == f"other writer {ATTEMPTS}"
    assert record.environment.Tags == {}
    assert record.environment.Status == {"tag": "CREATING", "transition": "CREATING", "forget": "DELETING"}[change]
