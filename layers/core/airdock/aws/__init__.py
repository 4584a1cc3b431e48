"""Adapters of airdock.core's ports onto AWS services (DynamoDB, Step Functions, ECS, S3, ...).

Modules import boto3 lazily or at module level; the Lambda runtime provides it.
"""
