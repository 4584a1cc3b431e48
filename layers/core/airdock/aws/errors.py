"""Errors of the AWS adapters that the workflows treat specially.

The ASL files retry an error named `TransientError` (Step Functions names a Lambda error after
the exception class), so a step that meets a condition that clears by itself (Aurora resuming
from a pause, an ECS service still draining) raises this and is simply run again.
"""
from __future__ import annotations


class TransientError(Exception):
    pass
