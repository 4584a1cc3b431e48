"""Everything one local Airdock instance owns, built from one data directory."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from airdock.airflow_http import UrllibAirflowHttp
from airdock.core.authorization import Authorizer
from airdock.core.data_plane import AirflowDataPlane
from airdock.core.provisioning import Provisioner
from airdock.core.service import EnvironmentService
from airdock.core.settings import Settings
from airdock.local.buckets import LocalBuckets
from airdock.local.credentials import KeyStore
from airdock.local.airflow_targets import FileRolePolicy, LocalAirflowTargets
from airdock.local.events import LocalEventLog
from airdock.local.functions import load_function
from airdock.local.group_commit import GroupCommit
from airdock.local.lifecycle_loop import LocalLifecycleRunner, OffsetClock
from airdock.local.logs import LocalLogs
from airdock.local.metrics_store import SqliteMetrics
from airdock.local.sqlite_db import SqliteDatabase
from airdock.local.sqlite_repository import SqliteEnvironmentRepository
from airdock.local.tls import LocalCertificateAuthority

log = logging.getLogger("airdock.local")


class LocalContext:
    def __init__(
        self, data_dir: Path, settings: Settings, *, compute: Any | None = None, provision: bool = True,
        group_commit: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        (self.data_dir / "buckets").mkdir(exist_ok=True)
        (self.data_dir / "envs").mkdir(exist_ok=True)
        self.settings = settings
        self.keys = KeyStore(self.data_dir, settings.account_id, (settings.access_key_id, settings.secret_access_key))
        # group_commit: the host runs its writes through `self.group_commit.write`, which answers
        # them only after one fsync per group (the local endpoint does), so commits need not
        # fsync one by one (group_commit.py). Other hosts (tests, tools) keep FULL.
        self.repository = SqliteEnvironmentRepository(
            db=SqliteDatabase(self.data_dir / "state.db", synchronous="NORMAL" if group_commit else "FULL"))
        self.group_commit = GroupCommit(self.repository.db.sync) if group_commit else None
        self.metrics = SqliteMetrics(db=self.repository.db)
        self.buckets = LocalBuckets(self.data_dir / "buckets")
        self.events = LocalEventLog(self.data_dir / "events.jsonl", settings.events_webhook)
        self._engine: Any | None = None
        self._compute = compute
        self._workflows: Any | None = None
        # Per-access-key IAM-style policies (airdock keys); the root key stays unrestricted.
        self.authorizer = Authorizer(self.keys.policies_for, settings.partition, settings.region, settings.account_id)
        # Lifecycle: pause/resume/maintenance run on threads through the lifecycle function; module
        # logs are routed into files; the clock is injectable (lifecycle_loop.py).
        self.logs = LocalLogs(self.data_dir / "envs")
        self.lifecycle_clock: Any = OffsetClock.from_file(settings.lifecycle_clock_offset_file)
        self._lifecycle: Any | None = None
        self._lifecycle_loops: list[Any] = []
        self.provision = provision
        # MWAA clients call https://{WebServerHostname}: web fronts serve HTTPS with certificates
        # from a CA of this data directory, unless the user gave a certificate of their own.
        self.certificate_authority: LocalCertificateAuthority | None = None
        if provision and not settings.web_tls_cert:
            self.certificate_authority = LocalCertificateAuthority(self.data_dir / "tls")
            self.certificate_authority.ensure()
        self.service = EnvironmentService(
            repository=self.repository,
            buckets=self.buckets,
            events=self.events,
            settings=settings,
            metrics=self.metrics,
            data_plane=AirflowDataPlane(LocalAirflowTargets(self.data_dir / "envs", lambda: self.compute),
                                        FileRolePolicy(self.data_dir / "airflow-roles.json"), UrllibAirflowHttp(),
                                        authorizer=self.authorizer),
            # Control-plane-only mode (API and state, no Airflow): changes stay pending, visibly.
            workflows=_LazyWorkflows(self) if provision else None,
            lifecycle=LocalLifecycleRunner(lambda: self.lifecycle) if provision else None,
            authorizer=self.authorizer,
        )
        # MWAA Serverless (workflows from YAML, the `mwaa-serverless` API) on the same endpoint.
        from airdock.local.serverless.context import ServerlessContext

        self.serverless = ServerlessContext(self.data_dir, settings, buckets=self.buckets, events=self.events,
                                            policies=self.keys.policies_for, provision=provision)

    @property
    def compute(self) -> Any:
        if self._compute is None:
            from airdock.local.compute import LocalCompute

            self._compute = LocalCompute(self.data_dir, self.buckets, self.settings,
                                         certificate_authority=self.certificate_authority)
        return self._compute

    @property
    def engine(self) -> Any:
        """The in-process Step Functions engine (built on first use: importing moto's ASL
        interpreter costs seconds, which plain API calls should not pay)."""
        if self._engine is None:
            from airdock.local.workflows import build_engine

            provisioner = Provisioner(self.service, self.compute)
            function = load_function("provisioner")
            self._engine = build_engine(
                self.data_dir / "workflows.db",
                self.settings.region,
                self.settings.account_id,
                lambda event, context: function.handler(event, context, provisioner=provisioner),
            )
        return self._engine

    def start(self) -> None:
        """Once the server runs: bring back environments and workflows interrupted by a stop or
        a crash."""
        self.serverless.start()
        if not self.provision:
            return
        # Before the first request is served: the environments this server must start again are
        # UNAVAILABLE from the start, never AVAILABLE while nothing of them runs yet. The lifecycle
        # loop's recover() then starts their "recover" operations.
        recovering = self.lifecycle.recover_components()
        if recovering:
            log.info("restarting the components of %d environment(s): %s", len(recovering), recovering)
        resumed = self.engine.resume_unfinished()
        if resumed:
            log.info("resumed %d interrupted workflow(s)", len(resumed))
        self._start_lifecycle()
        self._start_autoscaling()

    def close(self) -> None:
        """Stop background work and every environment's processes; unfinished workflows are
        resumed, and AVAILABLE environments restarted, by the next start."""
        self._stop_lifecycle()
        self.serverless.close()
        for loop in getattr(self, "_loops", []):  # the autoscaler would start workers again
            loop.stop()
        if self._engine is not None:
            self._engine.close()
        if self._compute is not None:
            self._compute.close()

    def authorize_extension(self, access_key_id: str, name: str) -> None:
        """Airdock's signed read-only extensions (workers, metrics, events, logs of one
        environment) are authorized as `airflow:GetEnvironment` on that environment: they show
        what GetEnvironment's caller may see anyway. Raises AccessDenied."""
        from airdock.core.authorization import Target
        from airdock.core.ports import Caller

        key = self.keys.lookup(access_key_id)
        caller = Caller(access_key_id=access_key_id, principal_arn=key.principal_arn if key else "anonymous")
        self.service.authorize(caller, Target("GetEnvironment", name))

    # ---- worker autoscaling (issue 7) ---------------------------------------------------------

    @property
    def decision_log(self) -> Any:
        if getattr(self, "_decision_log", None) is None:
            from airdock.local.metrics_collector import SqliteDecisionLog

            self._decision_log = SqliteDecisionLog(self.repository.db)
        return self._decision_log

    def autoscaling_config(self) -> Any:
        from airdock.core.autoscaling import AutoscalingConfig

        # Locally metrics arrive every few seconds: older than 30 s means the collector stalled.
        # A local worker starts in 10-20 s, not Fargate's ~2 min: a minute of pre-warm is plenty.
        return AutoscalingConfig.from_settings(self.settings, max_metric_age_s=30.0, prewarm_s=60.0)

    def _start_autoscaling(self) -> None:
        """The metrics collector and the autoscaler handler, each on its own loop
        (AIRDOCK_AUTOSCALER=off disables both)."""
        if not self.settings.autoscaler:
            return
        from airdock.core.autoscaling import Autoscaler
        from airdock.local.metrics_collector import MetricsCollector, PeriodicTask

        pool = self.compute.worker_pool()
        config = self.autoscaling_config()
        # The collector publishes the task metrics every few seconds: the run only decides.
        collector = MetricsCollector(self.repository, pool, self.metrics, config)
        function = load_function("autoscaler")
        autoscaler = Autoscaler(self.repository, self.metrics, pool, config, decisions=self.decision_log)

        def autoscale() -> None:
            function.handler({"source": "airdock.local", "detail-type": "Scheduled Event"}, None, autoscaler=autoscaler)

        self._loops = [
            PeriodicTask("metrics-collector", self.settings.metrics_interval_s, collector.collect_once).start(),
            PeriodicTask("autoscaler", self.settings.autoscaler_interval_s, autoscale).start(),
        ]

    def worker_status(self, name: str) -> dict[str, Any] | None:
        """Current/desired workers and the last decisions (the `/_airdock/.../workers` extension)."""
        import time

        from airdock.core import autoscaling, catalog

        record = self.repository.get(name)
        if record is None:
            return None
        env = record.environment
        tpw = catalog.tasks_per_worker(env.EnvironmentClass, env.AirflowConfigurationOptions)
        try:
            return autoscaling.describe(name, now=time.time(), tasks_per_worker=tpw, min_workers=env.MinWorkers,
                                        max_workers=env.MaxWorkers, metrics=self.metrics,
                                        pool=self.compute.worker_pool(), decisions=self.decision_log,
                                        config=self.autoscaling_config())
        except Exception as exc:  # not running here (yet): the record's numbers, no pool
            return {"Name": name, "MinWorkers": env.MinWorkers, "MaxWorkers": env.MaxWorkers,
                    "TasksPerWorker": tpw, "CurrentWorkers": 0, "DrainingWorkers": 0, "DesiredWorkers": None,
                    "QueuedTasks": None, "RunningTasks": None, "Workers": [],
                    "LastDecisions": self.decision_log.recent(name, 10), "Detail": str(exc)}


    # ---- lifecycle, module logs, health metrics (issue 8) -------------------------------------

    @property
    def lifecycle(self) -> Any:
        if self._lifecycle is None:
            from airdock.core.lifecycle import Lifecycle

            self._lifecycle = Lifecycle(self.service, self.compute, self.lifecycle_clock)
        return self._lifecycle

    def _start_lifecycle(self) -> None:
        """The lifecycle loop (maintenance windows, schedules), the log router and the
        SchedulerHeartbeat/DAGParseTime collector, each on its own thread."""
        from airdock.local.airflow_metrics import AirflowHealthMetrics
        from airdock.local.lifecycle_loop import LifecycleLoop
        from airdock.local.logs import LogRouterLoop
        from airdock.local.metrics_collector import PeriodicTask

        loop = LifecycleLoop(lambda: self.lifecycle, self.lifecycle_clock, self.settings.lifecycle_interval,
                             self.settings.region, self.settings.account_id)
        loop.start()
        router = LogRouterLoop(self.logs, self.repository)
        health = AirflowHealthMetrics(self.repository, self.compute.environment, self.metrics)
        self._lifecycle_loops = [
            loop,
            PeriodicTask("log-router", self.settings.log_route_interval_s, router.route_all).start(),
            PeriodicTask("airflow-health-metrics", self.settings.health_metrics_interval_s, health.collect_once).start(),
        ]

    def _stop_lifecycle(self) -> None:
        for loop in self._lifecycle_loops:
            (loop.close if hasattr(loop, "close") else loop.stop)()
        self._lifecycle_loops = []


class _LazyWorkflows:
    def __init__(self, context: LocalContext) -> None:
        self.context = context

    def start(self, kind: str, name: str, payload: dict[str, Any]) -> str:
        from airdock.local.workflows import LocalWorkflows

        return LocalWorkflows(self.context.engine).start(kind, name, payload)  # type: ignore[arg-type]

