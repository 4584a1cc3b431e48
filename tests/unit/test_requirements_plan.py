"""An environment's requirements.txt is installed as MWAA installs it.

The files below are the ones the MWAA User Guide tells users to write (working-dags-dependencies,
connections-packages "Specifying newer provider packages", best-practices-dependencies "Python
wheels"), and MWAA's rules are those of its image (aws/amazon-mwaa-docker-images,
mwaa/utils/user_requirements.py and bin/airflow-user/safe-pip-install)."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from airdock_runtime import requirements
from airdock_runtime.requirements import LOCKS, plan_install

DAGS = Path("/srv/airdock/envs/my-env/dags")
PLUGINS = Path("/srv/airdock/envs/my-env/plugins")


def plan(text: str, version: str = "2.10.3") -> requirements.InstallPlan:
    return plan_install(text, version, dags_folder=DAGS, plugins_folder=PLUGINS)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


# ---- constraints --------------------------------------------------------------------------------

def test_the_official_constraints_url_of_a_bundled_version_becomes_its_lock_so_no_network_is_needed() -> None:
    p = plan('--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt"\n'
             "apache-airflow-providers-snowflake==5.8.0\n")
    assert lines(p.requirements) == [f"--constraint {LOCKS / 'airflow-2.10.3-py3.11.txt'}",
                                     "apache-airflow-providers-snowflake==5.8.0"]
    assert any("no network needed" in c for c in p.changes)


@pytest.mark.parametrize("url", [
    "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-no-providers-3.12.txt",
    "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-source-providers-3.12.txt",
    "https://raw.githubusercontent.com/apache/airflow/refs/tags/constraints-3.0.6/constraints-3.12.txt",
    "http://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-3.12.txt",
])
def test_every_variant_of_the_official_constraints_url_becomes_the_lock(url: str) -> None:
    p = plan(f"-c {url}\napache-airflow-providers-snowflake\n", "3.0.6")
    assert lines(p.requirements)[0] == f"-c {LOCKS / 'airflow-3.0.6-py3.12.txt'}"


def test_the_url_of_a_version_airdock_does_not_bundle_is_left_as_written() -> None:
    url = "https://raw.githubusercontent.com/apache/airflow/constraints-2.7.2/constraints-3.11.txt"
    p = plan(f'--constraint "{url}"\nboto3\n')
    assert lines(p.requirements)[0] == f'--constraint "{url}"'
    assert any("2.7.2 is not bundled" in c for c in p.changes)


def test_a_file_with_no_constraint_line_is_constrained_by_the_lock_as_mwaa_adds_its_own() -> None:
    p = plan("apache-airflow-providers-snowflake\n")
    assert p.requirements == "apache-airflow-providers-snowflake\n"
    lock = (LOCKS / "airflow-2.10.3-py3.11.txt").read_text()
    assert lock in p.constraints
    assert any("as MWAA adds its constraints" in c for c in p.changes)


def test_a_commented_out_constraint_line_opts_out_of_the_lock_as_on_mwaa() -> None:
    # MWAA's check matches commented lines on purpose: the documented way to skip its constraints.
    p = plan('# --constraint "https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt"\n'
             "pandas==2.1.4\n")
    assert "apache-airflow-providers-amazon==" not in p.constraints
    assert p.requirements.startswith("# --constraint")


def test_airflow_and_the_platform_s_packages_are_always_held_at_the_lock_s_versions() -> None:
    p = plan('--constraint "/usr/local/airflow/dags/constraints-3.11-updated.txt"\n'
             "apache-airflow-providers-amazon==9.1.0\n")
    held = dict(ln.split("==") for ln in lines(p.constraints) if not ln.startswith("#"))
    assert held["apache-airflow"] == "2.10.3"
    assert held["celery"] == "5.4.0"
    assert held["watchtower"] == "3.3.1"
    # ... but providers stay the user's to choose, as MWAA documents for a newer Amazon provider.
    assert "apache-airflow-providers-amazon" not in held


def test_a_version_without_a_lock_is_refused() -> None:
    with pytest.raises(KeyError):
        plan("boto3\n", "2.4.3")


# ---- MWAA's folders -----------------------------------------------------------------------------

def test_wheels_shipped_in_plugins_zip_install_from_the_environment_s_plugins_folder() -> None:
    p = plan("--find-links /usr/local/airflow/plugins\n--no-index\n\nnumpy\n")
    assert lines(p.requirements) == [f"--find-links {PLUGINS}", "--no-index", "numpy"]


def test_a_modified_constraints_file_in_the_dags_folder_is_read_from_the_environment_s_dags() -> None:
    p = plan('--constraint "/usr/local/airflow/dags/constraints-3.11-updated.txt"\n'
             "apache-airflow-providers-amazon==9.1.0\n")
    assert lines(p.requirements)[0] == f"--constraint {DAGS}/constraints-3.11-updated.txt"
    assert "apache-airflow-providers-amazon==9.1.0" in p.requirements


@pytest.mark.parametrize(("written", "meant"), [
    ("-f /usr/local/airflow/plugins/", f"-f {PLUGINS}/"),
    ("--find-links=/usr/local/airflow/plugins/wheels", f"--find-links={PLUGINS}/wheels"),
    ("-r /usr/local/airflow/dags/requirements-extra.txt", f"-r {DAGS}/requirements-extra.txt"),
    ("/usr/local/airflow/plugins/mylib-1.0-py3-none-any.whl", f"{PLUGINS}/mylib-1.0-py3-none-any.whl"),
    ("mylib @ file:///usr/local/airflow/plugins/mylib-1.0-py3-none-any.whl",
     f"mylib @ file://{PLUGINS}/mylib-1.0-py3-none-any.whl"),
    ("-e /usr/local/airflow/dags/mylib  # editable", f"-e {DAGS}/mylib # editable"),
])
def test_every_place_a_path_can_stand_means_the_environment_s_folder(written: str, meant: str) -> None:
    assert lines(plan(written + "\n").requirements) == [meant]


@pytest.mark.parametrize("written", [
    "--find-links /usr/local/airflow/plugins_old",
    "--find-links /opt/usr/local/airflow/plugins",
    "--find-links /usr/local/airflow/requirements",
    "--index-url https://${AIRFLOW__FOO__USER}:${AIRFLOW__FOO__PASS}@my.privatepypi.com",
    "# --find-links /usr/local/airflow/plugins",
])
def test_other_paths_options_and_comments_are_left_alone(written: str) -> None:
    assert lines(plan(written + "\n").requirements) == [written]


def test_a_folder_with_spaces_is_quoted_for_the_installer() -> None:
    p = plan_install("--find-links /usr/local/airflow/plugins\nnumpy\n", "2.10.3",
                     dags_folder=Path("/data/my envs/e/dags"), plugins_folder=Path("/data/my envs/e/plugins"))
    assert lines(p.requirements)[0] == '--find-links "/data/my envs/e/plugins"'


def test_continued_lines_are_read_as_one_as_pip_reads_them() -> None:
    p = plan("--find-links \\\n  /usr/local/airflow/plugins\nnumpy\n")
    assert lines(p.requirements) == [f"--find-links {PLUGINS}", "numpy"]


# ---- the real installer reads the plan ----------------------------------------------------------

def _wheel(folder: Path, name: str, version: str) -> None:
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{name}/__init__.py", "")
        whl.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}/RECORD", "")


def test_uv_installs_a_plugins_zip_wheel_offline_from_the_plan(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins folder"
    plugins.mkdir()
    _wheel(plugins, "airdock_probe", "1.2.3")
    p = plan_install("--find-links /usr/local/airflow/plugins\n--no-index\n\nairdock-probe\n", "2.10.3",
                     dags_folder=tmp_path / "dags", plugins_folder=plugins)
    (tmp_path / "requirements.txt").write_text(p.requirements)
    (tmp_path / "constraints.txt").write_text(p.constraints)
    uv = str(Path(sys.executable).with_name("uv"))
    out = subprocess.run([uv, "pip", "compile", "--offline", "--no-header", "--python-version", "3.11",
                          str(tmp_path / "requirements.txt"), "-c", str(tmp_path / "constraints.txt")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "airdock-probe==1.2.3" in out.stdout
