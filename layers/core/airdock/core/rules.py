"""MWAA's rules that span several members or depend on the catalogue (not expressible per field)."""
from __future__ import annotations

from airdock.core import catalog
from airdock.core.blueprint import PLATFORM_OWNED_OPTIONS
from airdock.core.errors import ValidationError
from airdock.core.models import Environment


def check_airflow_version(version: str) -> None:
    if version not in catalog.AIRFLOW_VERSIONS:
        supported = ", ".join(catalog.AIRFLOW_VERSIONS)
        raise ValidationError(
            f"Invalid AirflowVersion: {version} is not supported. Supported versions: {supported}."
        )


def check_environment(env: Environment) -> None:
    """Check a complete configuration (after defaults, or after merging an update)."""
    check_airflow_version(env.AirflowVersion)
    klass = catalog.ENVIRONMENT_CLASSES.get(env.EnvironmentClass)
    if klass is None:
        allowed = ", ".join(catalog.ENVIRONMENT_CLASSES)
        raise ValidationError(f"Invalid EnvironmentClass: {env.EnvironmentClass}. Valid values: {allowed}.")
    if env.MaxWorkers > catalog.MAX_WORKERS_QUOTA:
        raise ValidationError(
            f"Invalid MaxWorkers: {env.MaxWorkers}. MaxWorkers must be at most {catalog.MAX_WORKERS_QUOTA}."
        )
    if env.MinWorkers > env.MaxWorkers:
        raise ValidationError(
            f"Invalid MinWorkers: {env.MinWorkers}. MinWorkers must be less than or equal to "
            f"MaxWorkers ({env.MaxWorkers})."
        )
    if not klass.min_schedulers <= env.Schedulers <= klass.max_schedulers:
        raise ValidationError(
            f"Invalid Schedulers: {env.Schedulers}. {klass.name} environments accept "
            f"{_range(klass.min_schedulers, klass.max_schedulers)} schedulers."
        )
    for member, value in (("MinWebservers", env.MinWebservers), ("MaxWebservers", env.MaxWebservers)):
        if not klass.min_webservers <= value <= klass.max_webservers:
            raise ValidationError(
                f"Invalid {member}: {value}. {klass.name} environments accept "
                f"{_range(klass.min_webservers, klass.max_webservers)} web servers."
            )
    if env.MinWebservers > env.MaxWebservers:
        raise ValidationError(
            f"Invalid MinWebservers: {env.MinWebservers}. MinWebservers must be less than or equal "
            f"to MaxWebservers ({env.MaxWebservers})."
        )
    check_configuration_options(env.AirflowConfigurationOptions)


def check_version_change(current: str, target: str) -> None:
    """The AirflowVersion changes MWAA makes in place (user guide, "Upgrading the Apache Airflow
    version"): upgrades within a major version; from 2.11 to Airflow 3 (from an older 2.x, upgrade
    to 2.11 first); from Airflow 3 back to 2.11. Anything else, as MWAA answers it."""
    if current == target:
        return
    old, new = catalog.release(current), catalog.release(target)
    allowed = (
        (old.major == new.major and catalog.version_order(target) > catalog.version_order(current))
        or (old.minor == (2, 11) and new.major == 3)
        or (old.major == 3 and new.minor == (2, 11))
    )
    if not allowed:
        hint = ""
        if old.major == 2 and new.major == 3:
            hint = " Upgrade to Apache Airflow 2.11 first, then to version 3."
        elif old.major == new.major:
            hint = " Within a major version only upgrades are supported."
        elif old.major == 3:
            hint = " Apache Airflow 3 environments can move back to 2.11 only."
        raise ValidationError(f"Airflow version {current} does not support updates to version {target}.{hint}")


def check_configuration_options(options: dict[str, str]) -> None:
    for key in sorted(options):
        if "." not in key.strip("."):
            raise ValidationError(
                f"Invalid AirflowConfigurationOptions key '{key}': keys have the form section.option "
                "(for example core.default_task_retries)."
            )
        if key in PLATFORM_OWNED_OPTIONS:
            raise ValidationError(
                f"Invalid AirflowConfigurationOptions key '{key}': this option is managed by the "
                "service and cannot be overridden."
            )


def _range(low: int, high: int) -> str:
    return f"exactly {low}" if low == high else f"{low} to {high}"
