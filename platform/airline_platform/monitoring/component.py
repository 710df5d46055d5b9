"""The `Monitoring` component: turns the catalog's specs into Cloud Monitoring resources.

Per stack it creates the notification channels from configuration, a monitoring service per
user-facing part (the Cloud Run API, registered with `GenericService`, and the ingest path, a
`CustomService`), the SLOs, one burn-rate policy per SLO and window pair that can fire, the
symptom and absence alerts, the log-based metrics, the authenticated uptime check of the health
path with `run.invoker` for the Monitoring service agent, and the dashboard. Every alert's
documentation links its runbook in `docs/runbooks/`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig
from airline_platform.monitoring import catalog, dashboard
from airline_platform.monitoring.alerting import (
    SLO_PERIOD_DAYS,
    AlertSpec,
    SloSpec,
    burn_rate_alerts,
    percent,
    seconds,
)
from airline_platform.monitoring.log_metrics import LOG_METRICS, LogMetricSpec
from app.contract.pipeline import PIPELINE

UPTIME_PERIOD_SECONDS = 60
UPTIME_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class MonitoringArgs:
    """What the component watches and the stack's configuration."""

    config: StackConfig
    service: gcp.cloudrunv2.Service
    health_path: str
    subscription: gcp.pubsub.Subscription
    dead_letter_subscription: gcp.pubsub.Subscription
    depends_on: Sequence[pulumi.Resource]


class Monitoring(pulumi.ComponentResource):
    """Channels, monitoring services, SLOs, alert policies, uptime check and dashboard of one stack.

    Built in the order each part needs the one before (pulumi/examples `gcp-py-network-component`
    style: every child has `parent=self`, the outputs are registered once at the end).
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:Monitoring", name, None, opts)
        self._name, self._args, self._cfg = name, args, args.config
        self._labels = self._cfg.labels("monitoring")
        self._after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))

        self.channels = self._notification_channels()
        self.uptime_check = self._uptime_check()
        self.log_metrics = self._log_metrics()
        targets = catalog.Targets(
            region=self._cfg.region,
            service=args.service.name,
            max_instances=self._cfg.max_instances,
            topic=PIPELINE.topic,
            subscription=args.subscription.name,
            dead_letter_subscription=args.dead_letter_subscription.name,
            uptime_check_id=self.uptime_check.uptime_check_id,
        )
        self.services = self._monitoring_services()
        specs = catalog.slos(targets, self._cfg.monitoring)
        self.slos = self._slos(specs)
        self.dashboard = self._dashboard(targets, specs)
        alerts = (
            catalog.symptom_alerts(targets)
            + catalog.log_metric_alerts(targets)
            + catalog.absence_alerts(targets)
            + [alert for spec in specs for alert in burn_rate_alerts(spec, self.slos[spec.key].name)]
        )
        self.alert_policies = {alert.key: self._alert_policy(alert) for alert in alerts}
        self.register_outputs(
            {
                "dashboard": self.dashboard.id,
                "uptime_check": self.uptime_check.uptime_check_id,
                "slos": {key: slo.name for key, slo in self.slos.items()},
            }
        )

    def _notification_channels(self) -> dict[str, gcp.monitoring.NotificationChannel]:
        return {
            channel.name: gcp.monitoring.NotificationChannel(
                f"{self._name}-channel-{channel.name}",
                project=self._cfg.project,
                type=channel.type,
                display_name=channel.display_name,
                labels=dict(channel.labels),
                user_labels=self._labels,
                opts=self._after_apis,
            )
            for channel in self._cfg.monitoring.channels
        }

    def _uptime_check(self) -> gcp.monitoring.UptimeCheckConfig:
        """An authenticated check of the health path; the Monitoring service agent needs run.invoker."""
        cfg, args = self._cfg, self._args
        agent = gcp.projects.ServiceIdentity(
            f"{self._name}-agent",
            project=cfg.project,
            service="monitoring.googleapis.com",
            opts=self._after_apis,
        )
        invoker = gcp.cloudrunv2.ServiceIamMember(
            f"{self._name}-uptime-invoker",
            project=cfg.project,
            location=cfg.region,
            name=args.service.name,
            role="roles/run.invoker",
            member=agent.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return gcp.monitoring.UptimeCheckConfig(
            f"{self._name}-uptime-check",
            project=cfg.project,
            display_name=f"flight API {args.health_path} ({cfg.environment})",
            period=seconds(UPTIME_PERIOD_SECONDS),
            timeout=seconds(UPTIME_TIMEOUT_SECONDS),
            http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                path=args.health_path,
                port=443,
                use_ssl=True,
                validate_ssl=True,
                request_method="GET",
                service_agent_authentication=gcp.monitoring.UptimeCheckConfigHttpCheckServiceAgentAuthenticationArgs(
                    type="OIDC_TOKEN"
                ),
            ),
            monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url",
                labels={"project_id": cfg.project, "host": args.service.uri.apply(_host)},
            ),
            user_labels=self._labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[invoker, *args.depends_on]),
        )

    def _log_metrics(self) -> dict[str, gcp.logging.Metric]:
        """Log-based metrics; alerts on them wait for their creation."""
        project = self._cfg.project
        return {
            spec.name: _log_metric(
                f"{self._name}-log-metric-{spec.name.rsplit('/', 1)[-1].replace('_', '-')}",
                spec,
                project,
                self._args.service.name.apply(functools.partial(_filter_of, spec, project=project)),
                self,
            )
            for spec in LOG_METRICS
        }

    def _monitoring_services(self) -> dict[str, gcp.monitoring.GenericService | gcp.monitoring.CustomService]:
        """The API (Cloud Run is a monitoring service only once registered) and the ingest path."""
        cfg = self._cfg
        return {
            "api": gcp.monitoring.GenericService(
                f"{self._name}-service-api",
                project=cfg.project,
                service_id=catalog.API_SERVICE_ID,
                display_name="Flight API (Cloud Run)",
                basic_service=gcp.monitoring.GenericServiceBasicServiceArgs(
                    service_type="CLOUD_RUN",
                    service_labels={"service_name": self._args.service.name, "location": cfg.region},
                ),
                user_labels=self._labels,
                opts=self._after_apis,
            ),
            "ingest": gcp.monitoring.CustomService(
                f"{self._name}-service-ingest",
                project=cfg.project,
                service_id=catalog.INGEST_SERVICE_ID,
                display_name="Flight event ingest (Pub/Sub to BigQuery)",
                user_labels=self._labels,
                opts=self._after_apis,
            ),
        }

    def _slos(self, specs: list[SloSpec]) -> dict[str, gcp.monitoring.Slo]:
        return {
            spec.key: gcp.monitoring.Slo(
                f"{self._name}-slo-{spec.key}",
                project=self._cfg.project,
                service=self.services[spec.service].service_id,
                slo_id=spec.key,
                display_name=f"{spec.display_name}: {percent(spec.goal)} over {SLO_PERIOD_DAYS} days",
                goal=spec.goal,
                rolling_period_days=SLO_PERIOD_DAYS,
                request_based_sli=spec.request_based_sli,
                windows_based_sli=spec.windows_based_sli,
                user_labels=self._labels,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in specs
        }

    def _dashboard(self, targets: catalog.Targets, specs: list[SloSpec]) -> gcp.monitoring.Dashboard:
        cfg, mon = self._cfg, self._cfg.monitoring

        def render(resolved: list[str]) -> str:
            service, subscription, dead_letter_subscription, *slo_names = resolved
            return dashboard.to_json(
                dashboard.dashboard(
                    dashboard.DashboardInputs(
                        title=f"Airline data platform ({cfg.environment})",
                        service=service,
                        region=cfg.region,
                        subscription=subscription,
                        dead_letter_subscription=dead_letter_subscription,
                        max_instances=cfg.max_instances,
                        latency_threshold_ms=mon.latency_threshold_ms,
                        freshness_threshold_seconds=mon.freshness_threshold_seconds,
                        slos=[
                            dashboard.SloTile(spec.display_name, name)
                            for spec, name in zip(specs, slo_names, strict=True)
                        ],
                    )
                )
            )

        return gcp.monitoring.Dashboard(
            f"{self._name}-dashboard",
            project=cfg.project,
            dashboard_json=pulumi.Output.all(
                targets.service,
                targets.subscription,
                targets.dead_letter_subscription,
                *(self.slos[spec.key].name for spec in specs),
            ).apply(render),
            opts=self._after_apis,
        )

    def _alert_policy(self, alert: AlertSpec) -> gcp.monitoring.AlertPolicy:
        cfg = self._cfg
        channels = [self.channels[c.name].name for c in cfg.monitoring.channels_for(alert.route)]
        dashboard_url = pulumi.Output.format(
            "https://console.cloud.google.com/monitoring/dashboards/builder/{0}?project={1}",
            self.dashboard.id.apply(lambda full: full.rsplit("/", 1)[-1]),
            cfg.project,
        )
        return gcp.monitoring.AlertPolicy(
            f"{self._name}-alert-{alert.key}",
            project=cfg.project,
            display_name=f"[{cfg.environment}] {alert.display_name}",
            combiner=alert.combiner,
            conditions=alert.conditions,
            severity=alert.severity,
            notification_channels=channels,
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(
                auto_close=seconds(alert.auto_close_seconds)
            ),
            documentation=_documentation(alert, cfg, dashboard_url),
            user_labels=self._labels | {"route": alert.route.value, "runbook": alert.runbook},
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*self._args.depends_on, *self.log_metrics.values()]
            ),
        )


def _log_metric(
    resource_name: str,
    spec: LogMetricSpec,
    project: str,
    log_filter: pulumi.Input[str],
    parent: pulumi.Resource,
) -> gcp.logging.Metric:
    distribution = spec.value is not None
    return gcp.logging.Metric(
        resource_name,
        project=project,
        name=spec.name,
        description=spec.description,
        filter=log_filter,
        metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
            metric_kind="DELTA",
            value_type="DISTRIBUTION" if distribution else "INT64",
            unit=spec.unit,
            labels=[
                gcp.logging.MetricMetricDescriptorLabelArgs(key=key, value_type="STRING")
                for key in spec.labels
            ],
        ),
        label_extractors=dict(spec.labels),
        value_extractor=spec.value,
        # Latencies from 1 ms and byte counts from 1 kB, each bucket twice the one before.
        bucket_options=gcp.logging.MetricBucketOptionsArgs(
            exponential_buckets=gcp.logging.MetricBucketOptionsExponentialBucketsArgs(
                num_finite_buckets=40, growth_factor=2, scale=1 if spec.unit == "ms" else 1000
            )
        )
        if distribution
        else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _filter_of(spec: LogMetricSpec, service: str, project: str) -> str:
    return spec.log_filter(service, project)


def _host(url: str) -> str:
    host = urlparse(url).hostname
    if not host:
        raise ValueError(f"the service URL {url!r} has no host")
    return host


def runbook_url(alert: AlertSpec, cfg: StackConfig) -> str:
    anchor = f"#{alert.runbook_section}" if alert.runbook_section else ""
    return f"{cfg.monitoring.runbook_base_url}/{alert.runbook}.md{anchor}"


def _documentation(
    alert: AlertSpec, cfg: StackConfig, dashboard_url: pulumi.Output[str]
) -> gcp.monitoring.AlertPolicyDocumentationArgs:
    """Markdown a responder reads first: the impact, where it fires, and the runbook link.

    The content holds no provider-computed value, so policies can check it during a preview.
    """
    url = runbook_url(alert, cfg)
    content = "\n\n".join(
        [
            f"**{alert.display_name}** ({alert.severity}, {alert.route.value})",
            alert.summary,
            f"Environment `{cfg.environment}`, project `{cfg.project}`.",
            f"**Runbook:** [{alert.runbook}.md]({url}): what users see, first checks, mitigations, "
            "escalation.",
        ]
    )
    return gcp.monitoring.AlertPolicyDocumentationArgs(
        subject=f"[{cfg.environment}] {alert.display_name}",
        content=content,
        mime_type="text/markdown",
        links=[
            gcp.monitoring.AlertPolicyDocumentationLinkArgs(display_name="Runbook", url=url),
            gcp.monitoring.AlertPolicyDocumentationLinkArgs(display_name="Dashboard", url=dashboard_url),
        ],
    )
