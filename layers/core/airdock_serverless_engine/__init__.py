"""Code that runs inside the MWAA Serverless engine (Airflow 3), not in Airdock's control plane.

Standard library only at import time; Airflow and dag-factory are imported inside the functions
that need them, in the engine's own virtualenv.
"""
