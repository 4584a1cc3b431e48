"""What runs inside an Airdock environment, beside Airflow: the component entrypoint, the web
front (MWAA's `/aws_mwaa/*` endpoints), token checks, spent-login-token stores and the worker
drain check.

One package, installed the same way (`pip install --no-deps`) into every local runtime
virtualenv and into the container image, and imported by the control plane for what both sides
share (token format, drain markers). Standard library only at import time: it runs with the
Airflow runtime's interpreter, where nothing of Airdock's own dependencies is installed;
psycopg2 and boto3 (both in every runtime) are imported only where they are used.
"""
