"""Specification of the environment status machine (MWAA_FACTS.md, "Behaviour")."""
from __future__ import annotations

import pytest

from airdock.core import constraints as c
from airdock.core import status as s
from airdock.core.errors import ValidationError

LEGAL = [
    (s.CREATING, s.AVAILABLE), (s.CREATING, s.CREATE_FAILED),
    (s.AVAILABLE, s.UPDATING), (s.UPDATING, s.AVAILABLE), (s.UPDATING, s.ROLLING_BACK),
    (s.ROLLING_BACK, s.UPDATE_FAILED), (s.UPDATING, s.UPDATE_FAILED),
    (s.AVAILABLE, s.DELETING), (s.DELETING, s.DELETED), (s.CREATE_FAILED, s.DELETING),
    (s.UPDATE_FAILED, s.UPDATING), (s.UPDATE_FAILED, s.DELETING),
    (s.AVAILABLE, s.MAINTENANCE), (s.MAINTENANCE, s.AVAILABLE),
    (s.AVAILABLE, s.CREATING_SNAPSHOT), (s.CREATING_SNAPSHOT, s.AVAILABLE),
    (s.AVAILABLE, s.UNAVAILABLE), (s.UNAVAILABLE, s.AVAILABLE),
]
ILLEGAL = [
    (s.CREATING, s.UPDATING), (s.CREATING, s.DELETING), (s.CREATING, s.DELETED),
    (s.DELETING, s.AVAILABLE), (s.DELETED, s.CREATING), (s.DELETED, s.AVAILABLE),
    (s.CREATE_FAILED, s.UPDATING), (s.CREATE_FAILED, s.AVAILABLE),
    (s.UPDATING, s.DELETING), (s.ROLLING_BACK, s.DELETING), (s.AVAILABLE, s.CREATING),
]


def test_every_mwaa_status_has_an_entry_in_the_transition_table() -> None:
    assert set(s.TRANSITIONS) == set(c.ENVIRONMENT_STATUSES)
    for targets in s.TRANSITIONS.values():
        assert targets <= set(c.ENVIRONMENT_STATUSES)


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_legal_transitions_are_allowed(current: str, new: str) -> None:
    s.check_transition(current, new)


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_illegal_transitions_are_refused(current: str, new: str) -> None:
    with pytest.raises(s.IllegalTransition):
        s.check_transition(current, new)


@pytest.mark.parametrize("status", c.ENVIRONMENT_STATUSES)
def test_staying_in_the_same_status_is_an_idempotent_no_op(status: str) -> None:
    s.check_transition(status, status)


def test_deleted_is_terminal() -> None:
    assert s.TRANSITIONS[s.DELETED] == frozenset()


def test_a_create_failed_environment_cannot_be_updated_with_mwaas_message() -> None:
    with pytest.raises(ValidationError) as caught:
        s.ensure_updatable("env", s.CREATE_FAILED)
    assert caught.value.message == "Environments with CREATE_FAILED status cannot be updated."
    assert caught.value.code == "ValidationException" and caught.value.status == 400


def test_a_create_failed_environment_can_be_deleted() -> None:
    s.ensure_deletable("env", s.CREATE_FAILED)


@pytest.mark.parametrize("status", [s.CREATING, s.UPDATING, s.ROLLING_BACK, s.DELETING, s.MAINTENANCE, s.CREATING_SNAPSHOT])
def test_no_update_or_delete_while_another_change_runs(status: str) -> None:
    assert status in s.BUSY
    with pytest.raises(ValidationError, match=f"is in {status} status"):
        s.ensure_updatable("env", status)
    with pytest.raises(ValidationError, match=f"is in {status} status"):
        s.ensure_deletable("env", status)


@pytest.mark.parametrize("status", [s.AVAILABLE, s.UPDATE_FAILED, s.UNAVAILABLE, s.PENDING])
def test_settled_environments_can_be_updated_and_deleted(status: str) -> None:
    s.ensure_updatable("env", status)
    s.ensure_deletable("env", status)


def test_busy_and_final_statuses_do_not_overlap() -> None:
    assert not (s.BUSY & s.FINAL)
