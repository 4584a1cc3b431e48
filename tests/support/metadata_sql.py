"""Running SQL against a local environment's own Airflow metadata database (its Postgres), with
the SQLAlchemy of the environment's Airflow runtime: how tests check the AWS adapters' SQL, which
the RDS Data API runs on AWS, against the real schema of each Airflow version."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

_SCRIPT = (
    "import json, os, sqlalchemy\n"
    "engine = sqlalchemy.create_engine(os.environ['URL'])\n"
    "with engine.connect() as c:\n"
    "    rows = c.execute(sqlalchemy.text(os.environ['SQL']), json.loads(os.environ['PARAMS'])).fetchall()\n"
    "print(json.dumps([list(r) for r in rows], default=str))\n"
)


def metadata_query(data_dir: Path, name: str, airflow_version: str, sql: str, **params: Any) -> list[list[Any]]:
    from airdock.core.settings import Settings

    env_dir = data_dir / "envs" / name
    secrets = json.loads((env_dir / "secrets.json").read_text())
    ports = json.loads((env_dir / "ports.json").read_text())
    python = next(Settings().runtime_cache.glob(f"airflow-{airflow_version}-*/bin/python"))
    out = subprocess.run([str(python), "-c", _SCRIPT], capture_output=True, text=True, timeout=60, env={
        "URL": f"postgresql+psycopg2://airflow:{secrets['db_password']}@127.0.0.1:{ports['postgres']}/airflow",
        "SQL": sql, "PARAMS": json.dumps(params)})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)  # type: ignore[no-any-return]
