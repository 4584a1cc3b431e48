"""Contract of the EnvironmentRepository port, run against every adapter (fixture `repository`:
SQLite on a real file, DynamoDB under moto with the table built from template.yaml)."""
from __future__ import annotations

import random
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.ports import EnvironmentRecord, EnvironmentRepository
from airdock.local.sqlite_repository import SqliteEnvironmentRepository
from support.records import sample_record


def _dump(record: EnvironmentRecord | None) -> dict | None:
    return None if record is None else record.model_dump(mode="json")


# ---------------------------------------------------------------- put_new / get


def test_given_a_new_record_when_put_new_then_get_returns_every_field(repository: EnvironmentRepository) -> None:
    record = sample_record("roundtrip-1")

    saved = repository.put_new(record)
    loaded = repository.get("roundtrip-1")

    assert saved.version == 1
    assert loaded is not None
    assert loaded.version == 1
    assert _dump(loaded) == _dump(saved)
    # Every member (optional ones, nested shapes, floats, unicode, internal) survives storage.
    assert loaded.environment.model_dump() == record.environment.model_dump()
    assert loaded.internal == record.internal


def test_given_a_stored_name_when_put_new_again_then_already_exists_and_the_first_is_untouched(
    repository: EnvironmentRepository,
) -> None:
    first = repository.put_new(sample_record("dup", MaxWorkers=3))

    with pytest.raises(AlreadyExists):
        repository.put_new(sample_record("dup", MaxWorkers=7, internal={"second": True}))

    assert _dump(repository.get("dup")) == _dump(first)


def test_given_no_record_when_get_then_none(repository: EnvironmentRepository) -> None:
    assert repository.get("never-created") is None


# ---------------------------------------------------------------- replace


def test_given_a_stored_record_when_replace_with_its_version_then_version_increments(
    repository: EnvironmentRepository,
) -> None:
    saved = repository.put_new(sample_record("upd"))
    saved.environment.Status = "UPDATING"
    saved.internal["workflow"] = "update"

    updated = repository.replace(saved)

    assert updated.version == 2
    assert _dump(repository.get("upd")) == _dump(updated)


def test_given_a_record_when_put_new_or_replace_then_the_returned_record_shares_nothing_with_it(
    repository: EnvironmentRepository,
) -> None:
    record = sample_record("apart", internal={"nested": {"list": [1]}})
    saved = repository.put_new(record)
    updated = repository.replace(saved)

    # Changing what the caller passed in, or what it got back, reaches neither the other nor storage.
    record.environment.Tags["added"] = "later"
    record.internal["nested"]["list"].append(2)
    saved.environment.Tags["also"] = "later"
    updated.internal["nested"]["list"].append(3)
    updated.environment.NetworkConfiguration.SecurityGroupIds.append("sg-later")

    stored = repository.get("apart")
    assert stored is not None
    assert "added" not in saved.environment.Tags and "also" not in updated.environment.Tags
    assert saved.internal["nested"]["list"] == [1]
    assert stored.internal["nested"]["list"] == [1]
    assert stored.environment.Tags == sample_record("apart").environment.Tags
    assert stored.environment.NetworkConfiguration.SecurityGroupIds == \
        sample_record("apart").environment.NetworkConfiguration.SecurityGroupIds


def test_given_a_stale_version_when_replace_then_concurrent_modification_and_state_unchanged(
    repository: EnvironmentRepository,
) -> None:
    saved = repository.put_new(sample_record("stale"))
    stale = saved.model_copy(deep=True)
    saved.environment.MaxWorkers = 4
    current = repository.replace(saved)

    stale.environment.MaxWorkers = 9
    with pytest.raises(ConcurrentModification):
        repository.replace(stale)

    assert _dump(repository.get("stale")) == _dump(current)


def test_given_twenty_writers_from_the_same_read_when_they_race_replace_then_exactly_one_wins(
    repository: EnvironmentRepository,
) -> None:
    repository.put_new(sample_record("race"))
    read = repository.get("race")
    assert read is not None
    writers = 20
    barrier = threading.Barrier(writers)

    def write(i: int) -> EnvironmentRecord | None:
        mine = read.model_copy(deep=True)
        mine.internal["winner"] = i
        barrier.wait()
        try:
            return repository.replace(mine)
        except ConcurrentModification:
            return None

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(write, range(writers)))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = repository.get("race")
    assert stored is not None and stored.version == 2
    assert stored.internal["winner"] == winners[0].internal["winner"]


def test_given_a_deleted_record_when_replace_then_concurrent_modification(repository: EnvironmentRepository) -> None:
    saved = repository.put_new(sample_record("gone"))
    repository.delete("gone", saved.version)

    with pytest.raises(ConcurrentModification):
        repository.replace(saved)

    assert repository.get("gone") is None


# ---------------------------------------------------------------- delete


def test_given_a_stored_record_when_delete_with_its_version_then_it_is_gone(repository: EnvironmentRepository) -> None:
    saved = repository.put_new(sample_record("del"))

    repository.delete("del", saved.version)

    assert repository.get("del") is None
    assert "del" not in repository.list_names(10)


def test_given_a_stale_version_when_delete_then_concurrent_modification_and_record_kept(
    repository: EnvironmentRepository,
) -> None:
    saved = repository.put_new(sample_record("del-stale"))
    current = repository.replace(saved.model_copy(deep=True))

    with pytest.raises(ConcurrentModification):
        repository.delete("del-stale", saved.version)

    assert _dump(repository.get("del-stale")) == _dump(current)


def test_given_no_record_when_delete_then_no_error(repository: EnvironmentRepository) -> None:
    repository.delete("never-created", 1)
    repository.delete("never-created", 0)


# ---------------------------------------------------------------- list_names


def test_given_sixty_records_when_listing_in_pages_of_25_then_every_name_once_in_order(
    repository: EnvironmentRepository,
) -> None:
    rng = random.Random(20260101)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    names: set[str] = set()
    while len(names) < 60:
        names.add(rng.choice(alphabet[:52]) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
    for name in rng.sample(sorted(names), len(names)):  # insertion order unrelated to name order
        repository.put_new(sample_record(name))

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = repository.list_names(25, after)
        if not page:
            break
        pages.append(page)
        after = page[-1]

    assert [len(p) for p in pages] == [25, 25, 10]
    assert [n for p in pages for n in p] == sorted(names)


def test_given_records_when_listing_after_a_name_that_is_not_stored_then_names_strictly_after_it(
    repository: EnvironmentRepository,
) -> None:
    for name in ("alpha", "bravo", "charlie"):
        repository.put_new(sample_record(name))

    assert repository.list_names(10, "b") == ["bravo", "charlie"]
    assert repository.list_names(10, "bravo") == ["charlie"]
    assert repository.list_names(1) == ["alpha"]
    assert repository.list_names(10, "charlie") == []


# ---------------------------------------------------------------- SQLite only


def test_given_a_sqlite_file_when_reopened_by_a_new_repository_then_data_survives(sqlite_path: Path) -> None:
    first = SqliteEnvironmentRepository(sqlite_path)
    saved = first.replace(first.put_new(sample_record("durable")))
    first.close()

    second = SqliteEnvironmentRepository(sqlite_path)
    try:
        assert _dump(second.get("durable")) == _dump(saved)
        assert second.list_names(10) == ["durable"]
        assert second.db.schema_version("environments") == 1
    finally:
        second.close()


def test_given_a_sqlite_repository_then_wal_mode_and_busy_timeout_are_on(
    sqlite_repository: SqliteEnvironmentRepository, sqlite_path: Path
) -> None:
    assert sqlite_repository.db.journal_mode() == "wal"
    assert sqlite_repository.db.connection().execute("PRAGMA busy_timeout").fetchone()[0] > 0
    # WAL is a property of the file: an unrelated connection sees it too.
    other = sqlite3.connect(sqlite_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_given_two_repositories_on_one_file_when_both_write_then_conditional_writes_hold_across_them(
    sqlite_path: Path,
) -> None:
    """Stand-in for two processes: separate connections, no shared Python state."""
    a, b = SqliteEnvironmentRepository(sqlite_path), SqliteEnvironmentRepository(sqlite_path)
    try:
        read = a.put_new(sample_record("shared"))
        b.replace(read.model_copy(deep=True))
        with pytest.raises(ConcurrentModification):
            a.replace(read)
        with pytest.raises(AlreadyExists):
            b.put_new(sample_record("shared"))
    finally:
        a.close()
        b.close()


def test_given_forked_processes_sharing_one_repository_when_all_increment_then_no_update_is_lost(
    sqlite_repository: SqliteEnvironmentRepository,
) -> None:
    """Real processes (fork) using the parent's repository object: each reopens its own
    connection, and retried conditional writes serialize across processes."""
    import multiprocessing

    processes, increments = 4, 10
    sqlite_repository.put_new(sample_record("counter", internal={"count": 0}))

    def worker() -> None:
        for _ in range(increments):
            while True:
                record = sqlite_repository.get("counter")
                assert record is not None
                record.internal["count"] += 1
                try:
                    sqlite_repository.replace(record)
                    break
                except ConcurrentModification:
                    continue

    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=worker) for _ in range(processes)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
    assert [child.exitcode for child in children] == [0] * processes

    final = sqlite_repository.get("counter")
    assert final is not None
    assert final.internal["count"] == processes * increments
    assert final.version == 1 + processes * increments
