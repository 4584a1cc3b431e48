"""Specification: when maintenance and pause/resume schedules are due (airdock.core.schedules)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airdock.core.errors import ValidationError
from airdock.core.schedules import (
    MAINTENANCE_WINDOW_S,
    PAUSE_SCHEDULE_TAG,
    RESUME_SCHEDULE_TAG,
    check_cron,
    cron_from_tag,
    latest_window_start,
    maintenance_due,
    schedule_due,
)

# 2026-03-04 is a Wednesday.
WED_1000 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)
LONG_AGO = (WED_1000 - timedelta(days=60)).timestamp()


def test_the_window_opens_on_its_weekday_and_time_in_utc() -> None:
    assert latest_window_start("WED:09:30", WED_1000) == datetime(2026, 3, 4, 9, 30, tzinfo=timezone.utc)
    assert latest_window_start("WED:10:30", WED_1000) == datetime(2026, 2, 25, 10, 30, tzinfo=timezone.utc)
    assert latest_window_start("SUN:03:00", WED_1000) == datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc)
    assert latest_window_start("WED:10:00", WED_1000) == WED_1000  # opening now counts


def test_maintenance_is_due_while_the_window_is_open_and_not_done_since_it_opened() -> None:
    assert maintenance_due("WED:09:30", WED_1000, LONG_AGO, None) is not None
    # done in this window: not again
    done = datetime(2026, 3, 4, 9, 31, tzinfo=timezone.utc).timestamp()
    assert maintenance_due("WED:09:30", WED_1000, LONG_AGO, done) is None
    # done last week: due again
    assert maintenance_due("WED:09:30", WED_1000, LONG_AGO, done - 7 * 86400) is not None


def test_maintenance_is_not_due_once_the_window_closed_or_for_an_environment_created_after_it_opened() -> None:
    late = WED_1000 + timedelta(seconds=MAINTENANCE_WINDOW_S)
    assert maintenance_due("WED:10:00", late, LONG_AGO, None) is None
    created_after_opening = datetime(2026, 3, 4, 9, 45, tzinfo=timezone.utc).timestamp()
    assert maintenance_due("WED:09:30", WED_1000, created_after_opening, None) is None


def test_the_latest_schedule_occurrence_wins_and_is_acted_on_once() -> None:
    # MWAA's tag values cannot hold '*' or ',': in tags '_' stands for '*' and '+' for ','.
    tags = {PAUSE_SCHEDULE_TAG: "0 19 _ _ _", RESUME_SCHEDULE_TAG: "0 7 * * *"}
    evening = datetime(2026, 3, 4, 19, 0, 30, tzinfo=timezone.utc)
    decision = schedule_due(tags, evening, LONG_AGO, None)
    assert decision is not None and decision.action == "pause"
    assert decision.occurrence == datetime(2026, 3, 4, 19, 0, tzinfo=timezone.utc)
    # acted on: nothing more until the next occurrence
    assert schedule_due(tags, evening + timedelta(hours=1), LONG_AGO, decision.occurrence.timestamp()) is None
    morning = schedule_due(tags, datetime(2026, 3, 5, 7, 5, tzinfo=timezone.utc), LONG_AGO, decision.occurrence.timestamp())
    assert morning is not None and morning.action == "resume"


def test_occurrences_before_the_environment_existed_are_ignored() -> None:
    tags = {PAUSE_SCHEDULE_TAG: "0 19 * * *"}
    now = datetime(2026, 3, 4, 19, 30, tzinfo=timezone.utc)
    assert schedule_due(tags, now, datetime(2026, 3, 4, 19, 10, tzinfo=timezone.utc).timestamp(), None) is None
    assert schedule_due(tags, now, datetime(2026, 3, 4, 18, 0, tzinfo=timezone.utc).timestamp(), None) is not None


def test_tag_values_spell_star_and_comma_with_characters_mwaa_allows_in_tags() -> None:
    assert cron_from_tag(" 0 7+19 _ _ MON-FRI ") == "0 7,19 * * MON-FRI"
    assert cron_from_tag("_/5 _ _ _ _") == "*/5 * * * *"
    tags = {PAUSE_SCHEDULE_TAG: "0 7+19 _ _ _"}
    decision = schedule_due(tags, datetime(2026, 3, 4, 19, 1, tzinfo=timezone.utc), LONG_AGO, None)
    assert decision is not None and decision.occurrence.hour == 19
    check_cron("@daily", PAUSE_SCHEDULE_TAG)


def test_no_or_invalid_schedule_tags_mean_nothing_is_due() -> None:
    assert schedule_due({}, WED_1000, LONG_AGO, None) is None
    assert schedule_due({PAUSE_SCHEDULE_TAG: "every evening"}, WED_1000, LONG_AGO, None) is None


def test_an_invalid_cron_expression_is_a_validation_error_naming_the_tag() -> None:
    check_cron("*/5 8-18 * * MON-FRI", PAUSE_SCHEDULE_TAG)
    check_cron("_/5 8-18 _ _ MON-FRI", PAUSE_SCHEDULE_TAG)
    with pytest.raises(ValidationError, match=PAUSE_SCHEDULE_TAG):
        check_cron("every evening", PAUSE_SCHEDULE_TAG)
