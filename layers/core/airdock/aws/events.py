"""Events port on EventBridge: MWAA's status-change events, on the account's default bus."""
from __future__ import annotations

import json
from typing import Any

import boto3


class EventBridgeEvents:
    def __init__(self, bus_name: str = "default", client: Any | None = None) -> None:
        self.bus_name = bus_name
        self.events = client or boto3.client("events")

    def publish(self, event: dict[str, Any]) -> None:
        # PutEvents may not use the reserved "aws." source prefix, so Airdock publishes under
        # "airdock.airflow" (MWAA) or "airdock.airflow-serverless" with the detail AWS sends; rules match either.
        self.events.put_events(Entries=[{
            "Source": "airdock." + str(event.get("source", "aws.airflow")).removeprefix("aws."),
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []),
            "EventBusName": self.bus_name,
        }])
