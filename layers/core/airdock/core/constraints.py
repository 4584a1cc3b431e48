"""Constraints of MWAA's API shapes, as botocore's `mwaa` service model states them.

A unit test compares each constant with the service model shipped in botocore, so they cannot
drift apart silently. Patterns are full-match (AWS anchors them) and use the `regex` module
because TagKey/TagValue use Unicode classes (\\p{L}) that `re` lacks.
"""
from __future__ import annotations

ENVIRONMENT_NAME = r"[a-zA-Z][0-9a-zA-Z-_]*"
IAM_ROLE_ARN = r"arn:aws(-[a-z]+)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
S3_BUCKET_ARN = r"arn:aws(-[a-z]+)?:s3:::[a-z0-9.\-]+"
RELATIVE_PATH = r".*"
KMS_KEY = (
    r"(((arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:\d+:)?key\/)?[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}"
    r"-[a-f0-9]{4}-[a-f0-9]{12}|(arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:\d+:)?alias/.+)"
)
AIRFLOW_VERSION = r"[0-9a-z.]+"
WEEKLY_MAINTENANCE_WINDOW_START = r".*(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30).*"
CONFIG_KEY = r"[a-z]+([a-z0-9._]*[a-z0-9_]+)?"
CONFIG_VALUE = r"[ -~]+"
TAG_KEY = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
TAG_VALUE = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
SUBNET_ID = r"subnet-[a-zA-Z0-9\-._]+"
SECURITY_GROUP_ID = r"sg-[a-zA-Z0-9\-._]+"
ENVIRONMENT_ARN = r"arn:aws(-[a-z]+)?:airflow:[a-z0-9\-]+:\d{12}:environment/\w+.*"
LOG_GROUP_ARN = r"arn:aws(-[a-z]+)?:logs:[a-z0-9\-]+:\d{12}:log-group:\w+.*"

ENVIRONMENT_STATUSES = (
    "CREATING", "CREATE_FAILED", "AVAILABLE", "UPDATING", "DELETING", "DELETED", "UNAVAILABLE",
    "UPDATE_FAILED", "ROLLING_BACK", "CREATING_SNAPSHOT", "PENDING", "MAINTENANCE",
)
WEBSERVER_ACCESS_MODES = ("PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE")
ENDPOINT_MANAGEMENT = ("CUSTOMER", "SERVICE")
LOGGING_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
WORKER_REPLACEMENT_STRATEGIES = ("FORCED", "GRACEFUL")
UPDATE_STATUSES = ("SUCCESS", "PENDING", "FAILED")
REST_API_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
METRIC_UNITS = (
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
)
