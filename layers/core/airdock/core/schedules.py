r"""When lifecycle actions are due: the weekly maintenance window and pause/resume cron schedules.

Pure functions of (configuration, now, what was already done), so the lifecycle function can be
driven by any clock: EventBridge's event time on AWS, the local loop's clock, a test's fixed time.

Semantics, chosen so a missed tick (server down, Lambda throttled) never loses or repeats an action:
- Maintenance: the window opens every week at `WeeklyMaintenanceWindowStart` (UTC) and stays open
  for `MAINTENANCE_WINDOW_S`. It is due while open, unless maintenance already ran since it opened
  or the environment was created after it opened (a new environment is already current).
- Schedules: each tag holds a cron expression (UTC). MWAA's tag values may not contain `*` or `,`
  (pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`), so in a tag `*` is written `_` and `,` is written `+`:
  `0 19 _ _ MON-FRI` is `0 19 * * MON-FRI`, `0 7+19 _ _ _` is `0 7,19 * * *`; `@daily` etc. work too. The latest occurrence at or before `now` of
  either schedule is what counts; it is acted on once (the caller records it). An occurrence older
  than the environment or than the last one acted on is ignored, so tagging an environment at 20:00
  with a 19:00 pause schedule pauses it now (the schedule says it should be paused), and a user
  who resumes it by hand at 20:30 is not overruled until the next occurrence.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from croniter import croniter

from airdock.core.errors import ValidationError

PAUSE_SCHEDULE_TAG = "airdock:pause-schedule"
RESUME_SCHEDULE_TAG = "airdock:resume-schedule"
SCHEDULE_TAGS = (PAUSE_SCHEDULE_TAG, RESUME_SCHEDULE_TAG)

# How long a weekly window stays open. MWAA does not publish a length; two hours covers a
# graceful restart that waits for long tasks, and bounds how late a missed window is caught up.
MAINTENANCE_WINDOW_S = 2 * 3600
_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def parse_window(window: str) -> tuple[int, int, int]:
    """`DAY:HH:MM` → (weekday 0=Monday, hour, minute)."""
    day, hour, minute = window.split(":")
    return _DAYS.index(day.upper()), int(hour), int(minute)


def latest_window_start(window: str, now: datetime) -> datetime:
    """The most recent opening of the weekly window at or before `now`."""
    now = _utc(now)
    weekday, hour, minute = parse_window(window)
    this_week = (now - timedelta(days=now.weekday())).replace(hour=hour, minute=minute, second=0, microsecond=0)
    start = this_week + timedelta(days=weekday)
    return start if start <= now else start - timedelta(days=7)


def maintenance_due(window: str, now: datetime, created_at: float, last_maintenance: float | None) -> datetime | None:
    """The window opening to act on, or None when no maintenance is due."""
    start = latest_window_start(window, now)
    if (_utc(now) - start).total_seconds() >= MAINTENANCE_WINDOW_S:
        return None
    done_since = max(created_at, last_maintenance or 0.0)
    return start if start.timestamp() > done_since else None


def cron_from_tag(value: str) -> str:
    """A schedule tag's value as a standard cron expression (see the module docstring)."""
    return value.strip().replace("_", "*").replace("+", ",")


def check_cron(value: str, tag: str) -> None:
    expression = cron_from_tag(value)
    if not expression or not croniter.is_valid(expression):
        raise ValidationError(
            f"Invalid value for tag {tag}: {value!r} is not a cron expression (five fields, UTC; "
            "in tags write '*' as '_' and ',' as '+', e.g. '0 19 _ _ MON-FRI')."
        )


def latest_occurrence(expression: str, now: datetime) -> datetime:
    """The latest time at or before `now` that the cron expression names (UTC)."""
    now = _utc(now)
    # get_prev is strictly before its start; start a second later so `now` itself counts.
    return croniter(expression, now + timedelta(seconds=1)).get_prev(datetime).astimezone(timezone.utc)


@dataclass(frozen=True)
class ScheduleDecision:
    action: str  # "pause" | "resume"
    occurrence: datetime


def schedule_due(tags: dict[str, str], now: datetime, created_at: float, last_acted: float | None) -> ScheduleDecision | None:
    """The schedule occurrence to act on now, if any (the latest of both schedules wins)."""
    candidates: list[ScheduleDecision] = []
    for action, tag in (("pause", PAUSE_SCHEDULE_TAG), ("resume", RESUME_SCHEDULE_TAG)):
        expression = cron_from_tag(tags.get(tag) or "")
        if not expression or not croniter.is_valid(expression):
            continue
        candidates.append(ScheduleDecision(action, latest_occurrence(expression, now)))
    if not candidates:
        return None
    latest = max(candidates, key=lambda d: d.occurrence)
    baseline = max(created_at, last_acted or 0.0)
    return latest if latest.occurrence.timestamp() > baseline else None
