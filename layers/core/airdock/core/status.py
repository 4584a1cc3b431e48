"""The environment status machine: which status may follow which, and what a status allows.

Every status change in Airdock goes through `check_transition`, so an illegal jump (say
DELETING → AVAILABLE after a crash) is refused instead of silently corrupting state.
"""
from __future__ import annotations

from airdock.core.errors import ValidationError

CREATING = "CREATING"
CREATE_FAILED = "CREATE_FAILED"
AVAILABLE = "AVAILABLE"
UPDATING = "UPDATING"
UPDATE_FAILED = "UPDATE_FAILED"
ROLLING_BACK = "ROLLING_BACK"
DELETING = "DELETING"
DELETED = "DELETED"
UNAVAILABLE = "UNAVAILABLE"
MAINTENANCE = "MAINTENANCE"
PENDING = "PENDING"
CREATING_SNAPSHOT = "CREATING_SNAPSHOT"

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATING: frozenset({AVAILABLE, CREATE_FAILED}),
    AVAILABLE: frozenset({UPDATING, DELETING, MAINTENANCE, UNAVAILABLE, PENDING, CREATING_SNAPSHOT}),
    UPDATING: frozenset({AVAILABLE, ROLLING_BACK, UPDATE_FAILED}),
    ROLLING_BACK: frozenset({AVAILABLE, UPDATE_FAILED}),
    UPDATE_FAILED: frozenset({UPDATING, DELETING}),
    CREATE_FAILED: frozenset({DELETING}),
    # A delete that cannot finish leaves the environment UNAVAILABLE (and deletable again).
    DELETING: frozenset({DELETED, UNAVAILABLE}),
    MAINTENANCE: frozenset({AVAILABLE, UNAVAILABLE}),
    UNAVAILABLE: frozenset({AVAILABLE, UPDATING, DELETING, PENDING}),
    # Airdock reports a paused environment as PENDING (no compute; resumes to AVAILABLE).
    PENDING: frozenset({AVAILABLE, UNAVAILABLE, DELETING, UPDATING}),
    CREATING_SNAPSHOT: frozenset({AVAILABLE}),
    DELETED: frozenset(),
}

# Statuses in which a workflow owns the environment: no other change may start.
BUSY: frozenset[str] = frozenset({CREATING, UPDATING, ROLLING_BACK, DELETING, MAINTENANCE, CREATING_SNAPSHOT})
FINAL: frozenset[str] = frozenset({AVAILABLE, CREATE_FAILED, UPDATE_FAILED, DELETED, UNAVAILABLE, PENDING})


class IllegalTransition(Exception):
    pass


def check_transition(current: str, new: str) -> None:
    if new != current and new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"{current} -> {new}")


def ensure_updatable(name: str, status: str) -> None:
    if status == CREATE_FAILED:
        raise ValidationError("Environments with CREATE_FAILED status cannot be updated.")
    if UPDATING not in TRANSITIONS.get(status, frozenset()):
        raise ValidationError(
            f"Environment {name} is in {status} status and cannot be updated until its current "
            "operation completes."
        )


def ensure_deletable(name: str, status: str) -> None:
    if DELETING not in TRANSITIONS.get(status, frozenset()):
        raise ValidationError(
            f"Environment {name} is in {status} status and cannot be deleted until its current "
            "operation completes."
        )
