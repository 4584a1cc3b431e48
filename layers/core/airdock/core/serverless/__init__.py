"""MWAA Serverless (`mwaa-serverless`, 2024-07-26): workflows defined in YAML, run per task.

The domain: request shapes, the definition rules, workflows and their immutable versions, runs
and their states, quotas and who may call what. It talks to storage, the Airflow engine and
sources through the ports in `ports.py` and knows nothing about HTTP, DynamoDB or processes.
"""
