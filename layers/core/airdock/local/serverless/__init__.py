"""Local adapters of MWAA Serverless: SQLite records, bucket folders and snapshots, and the one
Airflow 3 engine of the installation (supervised processes)."""
