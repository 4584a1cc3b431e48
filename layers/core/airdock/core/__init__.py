"""The Airdock domain: MWAA's environment model, its rules and its operations.

Nothing here knows about HTTP, DynamoDB, SQLite or processes; adapters plug into the ports.
"""
