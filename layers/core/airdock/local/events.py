"""Local event bus: status-change events appended to `<data-dir>/events.jsonl`, optionally
POSTed to a webhook (`AIRDOCK_EVENTS_WEBHOOK`). Readers tail the file; it is the local twin of
EventBridge's `aws.airflow` events."""
from __future__ import annotations

import json
import logging
import threading
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LocalEventLog:
    def __init__(self, path: Path, webhook_url: str | None = None) -> None:
        self.path = path
        self.webhook_url = webhook_url
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), sort_keys=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as sink:
            sink.write(line + "\n")
        if self.webhook_url:
            threading.Thread(target=self._post, args=(line,), daemon=True).start()

    def read(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        events = [e for e in map(parse_line, self.path.read_text(encoding="utf-8", errors="replace").splitlines()) if e]
        if name is not None:
            events = [e for e in events if e.get("detail", {}).get("EnvironmentName") == name]
        return events[-limit:]

    def _post(self, line: str) -> None:
        request = urllib.request.Request(
            self.webhook_url or "", data=line.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError as exc:  # a subscriber being down must not affect the environment
            log.warning("event webhook %s failed: %s", self.webhook_url, exc)


def parse_line(line: str) -> dict[str, Any] | None:
    """One event, or None for a line that is not one: a write torn by a crash or power loss
    (appends are not atomic) must not hide the events around it."""
    try:
        event = json.loads(line) if line.strip() else None
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
