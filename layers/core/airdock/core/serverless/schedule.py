"""Workflow schedules: what a definition's `schedule` may say and when it fires.

MWAA Serverless takes a 5-field cron expression, a preset (`@hourly` … `@annually`), EventBridge's
`rate(N minutes|hours|days)` or its 6-field `cron(min hour day-of-month month day-of-week year)`
(one of the two day fields `?`), or null for manual runs only. Airdock fires schedules itself,
as EventBridge Scheduler does for the real service: every DAG in Airflow has no schedule.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import croniter

PRESETS = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AWS_CRON = re.compile(r"cron\((.*)\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """The expression is not one MWAA Serverless accepts (the message says why)."""


def _aws_cron(body: str) -> tuple[str, str]:
    """EventBridge's 6 fields → (5-field cron, year field)."""
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError("cron() takes 6 fields: minutes hours day-of-month month day-of-week year")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("cron() needs '?' in exactly one of day-of-month and day-of-week")
    # EventBridge numbers days of the week 1-7 from Sunday; cron 0-6.
    dow = re.sub(r"\d+", lambda m: str((int(m.group()) - 1) % 7) if m.group().isdigit() and 1 <= int(m.group()) <= 7
                 else m.group(), dow) if "#" not in dow else dow
    five = " ".join("*" if f == "?" else f for f in (minute, hour, dom, month, dow))
    return five, year


def _year_allows(year_field: str, year: int) -> bool:
    if year_field in ("*", "?"):
        return True
    for part in year_field.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= year <= int(high):
                return True
        elif int(part) == year:
            return True
    return False


class Schedule:
    """A parsed, valid schedule expression."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        text = expression.strip()
        self._period: timedelta | None = None
        self._cron: str | None = None
        self._year = "*"
        if (rate := _RATE.fullmatch(text)) is not None:
            count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
            if count < 1:
                raise ScheduleError("rate() needs a positive number")
            if (count == 1) != (rate.group(2) == unit):
                raise ScheduleError(f"write rate(1 {unit}) and rate(N {unit}s)")
            self._period = timedelta(seconds=count * _UNITS[unit])
        elif (aws := _AWS_CRON.fullmatch(text)) is not None:
            self._cron, self._year = _aws_cron(aws.group(1))
            try:
                if self._year not in ("*", "?"):
                    _year_allows(self._year, 2000)
            except ValueError:
                raise ScheduleError(f"year field {self._year!r} is not a year, range or list") from None
        elif text in PRESETS:
            self._cron = PRESETS[text]
        elif text.startswith("@"):
            raise ScheduleError(f"{text} is not a supported preset ({', '.join(sorted(PRESETS))})")
        else:
            self._cron = text
        if self._cron is not None and (len(self._cron.split()) != 5 or not croniter.is_valid(self._cron)):
            raise ScheduleError(f"{expression!r} is not a valid cron expression")

    def next_after(self, after: datetime, anchor: datetime) -> datetime | None:
        """The first fire time strictly after `after` (rates count from `anchor`)."""
        if self._period is not None:
            if after < anchor:
                return anchor
            steps = int((after - anchor) / self._period) + 1
            return anchor + steps * self._period
        assert self._cron is not None
        it = croniter(self._cron, after)
        for _ in range(1000):  # a year field can skip many occurrences
            fire: datetime = it.get_next(datetime)
            if _year_allows(self._year, fire.year):
                return fire
            if self._year not in ("*", "?") and all(
                    fire.year > int(p.split("-")[-1]) for p in self._year.split(",")):
                return None
        return None

    def latest_due(self, after: datetime, now: datetime, anchor: datetime) -> datetime | None:
        """The newest fire time in (after, now], if any: a missed run is made up once, not once
        per missed occurrence (catchup is off in MWAA Serverless)."""
        first = self.next_after(after, anchor)
        if first is None or first > now:
            return None
        if self._period is not None:
            steps = int((now - anchor) / self._period)
            return anchor + steps * self._period
        assert self._cron is not None
        previous: datetime = croniter(self._cron, now + timedelta(seconds=1)).get_prev(datetime)
        return previous if previous > after and _year_allows(self._year, previous.year) else first


def parse_schedule(value: object) -> Schedule | None:
    """A definition's `schedule` value: None (manual only) or a Schedule; ScheduleError if bad."""
    if value is None or (isinstance(value, str) and value.strip() in ("None", "null", "")):
        return None
    if not isinstance(value, str):
        raise ScheduleError("schedule must be a cron expression, a preset, rate(), cron() or null")
    return Schedule(value)
