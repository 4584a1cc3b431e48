"""What the CLI endpoint (`POST /aws_mwaa/cli`) may run: MWAA's allow-list of Airflow commands,
checked on the argv as a shell would split it, never run by one."""
from __future__ import annotations

import shlex

# MWAA's documented CLI allow-list ("Supported CLI commands"): read and operate commands on DAGs,
# tasks, variables, connections and pools, plus informational ones. Nothing that starts a
# component, changes the database schema, manages users or reads/writes local files.
ALLOWED_COMMANDS: frozenset[tuple[str, ...]] = frozenset({
    ("cheat-sheet",), ("version",), ("info",), ("plugins",),
    ("backfill", "create"),
    ("config", "get-value"), ("config", "list"),
    ("connections", "add"), ("connections", "delete"), ("connections", "get"), ("connections", "list"),
    ("dags", "backfill"), ("dags", "delete"), ("dags", "details"), ("dags", "list"),
    ("dags", "list-import-errors"), ("dags", "list-jobs"), ("dags", "list-runs"),
    ("dags", "next-execution"), ("dags", "pause"), ("dags", "report"), ("dags", "show"),
    ("dags", "state"), ("dags", "test"), ("dags", "trigger"), ("dags", "unpause"),
    ("db", "check"), ("jobs", "check"),
    ("pools", "delete"), ("pools", "get"), ("pools", "list"), ("pools", "set"),
    ("providers", "behaviours"), ("providers", "get"), ("providers", "hooks"), ("providers", "links"),
    ("providers", "list"), ("providers", "widgets"),
    ("roles", "create"), ("roles", "list"),
    ("tasks", "clear"), ("tasks", "failed-deps"), ("tasks", "list"), ("tasks", "render"),
    ("tasks", "state"), ("tasks", "states-for-dag-run"), ("tasks", "test"),
    ("variables", "delete"), ("variables", "get"), ("variables", "list"), ("variables", "set"),
})
# Options that would make an allowed command write files in the environment.
_FORBIDDEN_OPTIONS = ("--save", "--imgcat", "--subdir", "-S")


class CommandRefused(Exception):
    pass


def check_command(text: str) -> list[str]:
    """The argv of an allowed Airflow command, or CommandRefused saying why not.

    Split like a shell would (quotes) but never run by one, so `;`, `$(..)` or `|` are just
    characters of an argument.
    """
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise CommandRefused(f"The command could not be parsed: {exc}.") from None
    if argv and argv[0] == "airflow":
        argv = argv[1:]
    if not argv:
        raise CommandRefused("No command given: send an Airflow CLI command such as `dags list` as the body.")
    words = [a for a in argv if not a.startswith("-")]
    head = tuple(words[:2])
    if not (tuple(words[:1]) in ALLOWED_COMMANDS or head in ALLOWED_COMMANDS):
        raise CommandRefused(f"The Airflow CLI command `{' '.join(head) or argv[0]}` is not supported "
                             "by Airdock (MWAA's CLI allow-list).")
    for arg in argv:
        if arg.split("=", 1)[0] in _FORBIDDEN_OPTIONS:
            raise CommandRefused(f"The option {arg.split('=', 1)[0]} is not supported through the CLI endpoint.")
    return argv
