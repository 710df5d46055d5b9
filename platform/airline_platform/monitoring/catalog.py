"""The platform's SLOs and symptom alerts: what is measured, against which goal, and why.

Each SLI reads data Google already collects (no agent, no code in the API):

- API availability and latency: Cloud Run's `request_count` and `request_latencies`. Both miss
  requests Cloud Run refuses before the container (unauthenticated callers, max instances
  reached), so *reachability* measures the service from outside with the uptime check, and the
  *at max instances* alert watches the one refusal cause the service controls.
- Ingest freshness and correctness: the BigQuery subscription's `oldest_unacked_message_age`
  and its dead-letter count. A stopped export (permission lost, table changed) is caught faster
  by the subscription-state symptom alert than by the freshness SLO.

To add a signal (for example a log-based metric from the API's structured logs), create its
metric in the component and append an `SloSpec` or `AlertSpec` here; the component turns specs
into resources, derives burn-rate policies from SLOs, and the tests and policy pack then demand
its runbook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.monitoring.alerting import AlertSpec, SloSpec, seconds
from airline_platform.monitoring.config import MonitoringConfig, Route
from airline_platform.monitoring.log_metrics import (
    CONTRACT_BREACHES,
    REJECTED_PUBLISHES,
    WAREHOUSE_QUERIES,
    LogMetricSpec,
)
from airline_platform.monitoring.metrics import (
    ACKS,
    BACKLOG_AGE,
    DEAD_LETTERED,
    DEAD_LETTERS,
    EXPORT_STATE,
    INSTANCES,
    LATENCIES,
    REQUESTS,
    TOPIC_PUBLISHES,
    UNDELIVERED,
    UPTIME_PASSED,
)

API_SERVICE_ID = "flight-api"
INGEST_SERVICE_ID = "flight-ingest"
SLI_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Targets:
    """What is watched: the Cloud Run service and the Pub/Sub resources of the ingest path."""

    region: str
    service: pulumi.Input[str]
    max_instances: int
    topic: str
    subscription: pulumi.Input[str]
    dead_letter_subscription: pulumi.Input[str]
    uptime_check_id: pulumi.Input[str]


def filter_text(
    metric: str,
    resource_type: str,
    resource_labels: Mapping[str, str],
    metric_labels: Mapping[str, str] | None = None,
    exclude: Mapping[str, str] | None = None,
) -> str:
    """A Monitoring filter on one metric type, its resource and labels (`exclude`: label != value)."""
    parts = [f'metric.type="{metric}"', f'resource.type="{resource_type}"']
    parts += [f'resource.label."{k}"="{v}"' for k, v in resource_labels.items()]
    parts += [f'metric.label."{k}"="{v}"' for k, v in (metric_labels or {}).items()]
    parts += [f'metric.label."{k}"!="{v}"' for k, v in (exclude or {}).items()]
    return " ".join(parts)


def metric_filter(
    metric: str,
    resource_type: str,
    resource_labels: Mapping[str, pulumi.Input[str]],
    metric_labels: Mapping[str, pulumi.Input[str]] | None = None,
    exclude: Mapping[str, str] | None = None,
) -> pulumi.Output[str]:
    """`filter_text` once the label values (resource names, check ids) are known."""
    return pulumi.Output.all(dict(resource_labels), dict(metric_labels or {})).apply(
        lambda labels: filter_text(metric, resource_type, labels[0], labels[1], exclude)
    )


def cloud_run(targets: Targets) -> dict[str, pulumi.Input[str]]:
    return {"service_name": targets.service, "location": targets.region}


def uptime_check_passed(targets: Targets) -> pulumi.Output[str]:
    return metric_filter(
        UPTIME_PASSED,
        "uptime_url",
        {},
        {"check_id": targets.uptime_check_id},
    )


def slos(targets: Targets, cfg: MonitoringConfig) -> list[SloSpec]:
    requests = REQUESTS
    subscription = {"subscription_id": targets.subscription}
    return [
        SloSpec(
            key="api-availability",
            service="api",
            display_name="API availability",
            goal=cfg.goals["api-availability"],
            reason=(
                "Share of requests that reach the API and are not answered 5xx. 4xx are the caller's "
                "errors (validation, unknown ids) and do not spend the budget."
            ),
            request_based_sli=gcp.monitoring.SloRequestBasedSliArgs(
                good_total_ratio=gcp.monitoring.SloRequestBasedSliGoodTotalRatioArgs(
                    total_service_filter=metric_filter(requests, "cloud_run_revision", cloud_run(targets)),
                    bad_service_filter=metric_filter(
                        requests, "cloud_run_revision", cloud_run(targets), {"response_code_class": "5xx"}
                    ),
                )
            ),
        ),
        SloSpec(
            key="api-latency",
            service="api",
            display_name="API latency",
            goal=cfg.goals["api-latency"],
            reason=(
                f"Share of answered requests served within {cfg.latency_threshold_ms} ms (the container's "
                "time, BigQuery query included). 5xx are left out: they already spend the availability "
                "budget, and a fast failure must not make latency look good."
            ),
            request_based_sli=gcp.monitoring.SloRequestBasedSliArgs(
                distribution_cut=gcp.monitoring.SloRequestBasedSliDistributionCutArgs(
                    distribution_filter=metric_filter(
                        LATENCIES,
                        "cloud_run_revision",
                        cloud_run(targets),
                        exclude={"response_code_class": "5xx"},
                    ),
                    range=gcp.monitoring.SloRequestBasedSliDistributionCutRangeArgs(
                        min=0, max=cfg.latency_threshold_ms
                    ),
                )
            ),
        ),
        SloSpec(
            key="api-reachability",
            service="api",
            display_name="API reachability",
            goal=cfg.goals["api-reachability"],
            reason=(
                "Share of minutes in which an authenticated probe of /health succeeded from at least one "
                "checker region. Covers what request_count cannot see: requests refused before the "
                "container (IAM, max instances, a revision that does not start)."
            ),
            windows_based_sli=gcp.monitoring.SloWindowsBasedSliArgs(
                window_period=seconds(SLI_WINDOW_SECONDS),
                good_bad_metric_filter=uptime_check_passed(targets),
            ),
        ),
        SloSpec(
            key="ingest-freshness",
            service="ingest",
            display_name="Ingest freshness",
            goal=cfg.goals["ingest-freshness"],
            reason=(
                f"Share of minutes in which the oldest message not yet written to BigQuery is younger than "
                f"{cfg.freshness_threshold_seconds} s: how stale the analysts' data can be."
            ),
            windows_based_sli=gcp.monitoring.SloWindowsBasedSliArgs(
                window_period=seconds(SLI_WINDOW_SECONDS),
                metric_mean_in_range=gcp.monitoring.SloWindowsBasedSliMetricMeanInRangeArgs(
                    time_series=metric_filter(
                        BACKLOG_AGE,
                        "pubsub_subscription",
                        subscription,
                    ),
                    range=gcp.monitoring.SloWindowsBasedSliMetricMeanInRangeRangeArgs(
                        min=0, max=cfg.freshness_threshold_seconds
                    ),
                ),
            ),
        ),
        SloSpec(
            key="ingest-correctness",
            service="ingest",
            display_name="Ingest correctness",
            goal=cfg.goals["ingest-correctness"],
            reason=(
                "Share of messages the BigQuery subscription finished with that were written rather than "
                "dead-lettered (rejected by the table schema after every delivery attempt and forwarded to "
                "the dead-letter topic). Messages still in the backlog count under freshness instead. "
                "Whether Pub/Sub counts a BigQuery subscription's writes as acks is checked after the first "
                "deploy; the ingest-acks-missing alert says when acks stop while the topic receives events."
            ),
            request_based_sli=gcp.monitoring.SloRequestBasedSliArgs(
                good_total_ratio=gcp.monitoring.SloRequestBasedSliGoodTotalRatioArgs(
                    good_service_filter=metric_filter(ACKS, "pubsub_subscription", subscription),
                    bad_service_filter=metric_filter(
                        DEAD_LETTERS, "pubsub_subscription", subscription, DEAD_LETTERED
                    ),
                )
            ),
        ),
    ]


def _threshold(
    name: str,
    filter_: pulumi.Input[str],
    *,
    above: float,
    duration: int,
    aggregations: list[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs],
) -> gcp.monitoring.AlertPolicyConditionArgs:
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=name,
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=filter_,
            comparison="COMPARISON_GT",
            threshold_value=above,
            duration=seconds(duration),
            aggregations=aggregations,
        ),
    )


def _aligned(
    aligner: str, period: int, reducer: str | None = None, group_by: list[str] | None = None
) -> list[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs]:
    return [
        gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
            alignment_period=seconds(period),
            per_series_aligner=aligner,
            cross_series_reducer=reducer,
            group_by_fields=group_by,
        )
    ]


def _log_count(
    targets: Targets, spec: LogMetricSpec, labels: Mapping[str, str] | None = None
) -> pulumi.Output[str]:
    return metric_filter(spec.metric_type, "cloud_run_revision", cloud_run(targets), labels)


def log_metric_alerts(targets: Targets) -> list[AlertSpec]:
    """Alerts on what only the API's logs show (log-based metrics, `log_metrics.py`); tickets, not pages."""
    return [
        AlertSpec(
            key="api-query-cost-cap",
            display_name="A read was refused by the BigQuery cost cap",
            route=Route.TICKET,
            summary=(
                "BigQuery refused at least one of the API's queries because it would bill more than "
                "maxBytesBilled: those reads answered 500. The table outgrew the cap for some query shape, "
                "or a query lost its partition pruning."
            ),
            conditions=[
                _threshold(
                    "queries refused by maximum_bytes_billed in 10 min",
                    _log_count(targets, WAREHOUSE_QUERIES, {"outcome": "bytes-limit"}),
                    above=0,
                    duration=0,
                    aggregations=_aligned("ALIGN_DELTA", 600, "REDUCE_SUM"),
                )
            ],
            runbook="api-query-cost-cap",
        ),
        AlertSpec(
            key="api-publish-rejections",
            display_name="Producers' events are being refused",
            route=Route.TICKET,
            summary=(
                "More than 10 POST /v1/events were refused in 10 minutes (contract, media type, token, "
                "allow-list or rate limit): a producer's events are not reaching the warehouse. Each "
                "refusal told the producer why; nothing was stored for them."
            ),
            conditions=[
                _threshold(
                    "refused publishes in 10 min above 10",
                    _log_count(targets, REJECTED_PUBLISHES),
                    above=10,
                    duration=0,
                    aggregations=_aligned("ALIGN_DELTA", 600, "REDUCE_SUM"),
                )
            ],
            runbook="api-publish-rejections",
        ),
        AlertSpec(
            key="api-contract-breaches",
            display_name="Stored events break the contract and are withheld from readers",
            route=Route.TICKET,
            summary=(
                "Rows in the table fail the event contract (a producer published straight to the topic "
                "and skipped the API's checks), so readers do not see those events. The BigQuery "
                "subscription stored them because they fit the table's types."
            ),
            conditions=[
                _threshold(
                    "contract breaches read in the last hour",
                    _log_count(targets, CONTRACT_BREACHES),
                    above=0,
                    duration=0,
                    aggregations=_aligned("ALIGN_DELTA", 3_600, "REDUCE_SUM"),
                )
            ],
            runbook="api-contract-breaches",
            auto_close_seconds=86_400,
        ),
    ]


def symptom_alerts(targets: Targets) -> list[AlertSpec]:
    """Alerts on causes an SLO sees too late or not at all."""
    subscription = {"subscription_id": targets.subscription}
    return [
        AlertSpec(
            key="api-uptime-check-failing",
            display_name="API /health unreachable from several regions",
            route=Route.PAGE,
            summary=(
                "The authenticated probe of /health fails from more than one checker region: callers "
                "are probably refused or time out, whatever the API's own request metrics say."
            ),
            conditions=[
                _threshold(
                    "uptime check failing in more than one region",
                    uptime_check_passed(targets),
                    above=1,
                    duration=60,
                    aggregations=_aligned(
                        "ALIGN_NEXT_OLDER", 1_200, "REDUCE_COUNT_FALSE", ["resource.label.host"]
                    ),
                )
            ],
            runbook="api-uptime-check-failing",
        ),
        AlertSpec(
            key="api-at-max-instances",
            display_name="API at its maximum instance count",
            route=Route.PAGE,
            summary=(
                f"The API has run at its limit of {targets.max_instances} instances for 5 minutes. Cloud Run "
                "now refuses extra requests with 429 before they reach the container, so the availability "
                "SLO does not see them."
            ),
            conditions=[
                _threshold(
                    f"instances >= {targets.max_instances} for 5 min",
                    metric_filter(INSTANCES, "cloud_run_revision", cloud_run(targets)),
                    # Instance counts are whole numbers: above max - 1 means at the maximum.
                    above=targets.max_instances - 1,
                    duration=300,
                    # Each state's series (active, idle) is aligned to its mean over the minute, then
                    # the states are added per revision. Means add up to the mean of the total (one
                    # sample a minute: the count at that moment); maxima taken at different moments
                    # do not (they paged at half the limit). Aggregation:
                    # https://cloud.google.com/monitoring/api/v3/aggregation
                    aggregations=_aligned("ALIGN_MEAN", 60, "REDUCE_SUM", ["resource.label.revision_name"]),
                )
            ],
            runbook="api-at-max-instances",
        ),
        AlertSpec(
            key="ingest-subscription-not-active",
            display_name="BigQuery subscription is not writing (state not ACTIVE)",
            route=Route.PAGE,
            summary=(
                "The BigQuery subscription reports a state other than ACTIVE (for example "
                "PERMISSION_DENIED, NOT_FOUND or SCHEMA_MISMATCH): no event reaches the table, the "
                "backlog grows and analysts see stale data."
            ),
            conditions=[
                _threshold(
                    "subscription_state != ACTIVE for 5 min",
                    metric_filter(
                        EXPORT_STATE,
                        "pubsub_subscription",
                        subscription,
                        exclude={"subscription_state": "ACTIVE"},
                    ),
                    above=0,
                    duration=300,
                    aggregations=_aligned("ALIGN_MAX", 60),
                )
            ],
            runbook="ingest-subscription-not-active",
        ),
        AlertSpec(
            key="ingest-dead-letters-waiting",
            display_name="Dead-lettered flight events waiting for triage",
            route=Route.TICKET,
            summary=(
                "At least one message was dead-lettered and waits in the inspection subscription: an "
                "event a producer sent is not in the warehouse. Nothing is lost yet (retention 7 days)."
            ),
            conditions=[
                _threshold(
                    "messages in the dead-letter inspection subscription",
                    metric_filter(
                        UNDELIVERED,
                        "pubsub_subscription",
                        {"subscription_id": targets.dead_letter_subscription},
                    ),
                    above=0,
                    duration=0,
                    aggregations=_aligned("ALIGN_MAX", 300),
                )
            ],
            runbook="ingest-dead-letters-waiting",
        ),
    ]


ABSENT_AFTER_SECONDS = 900


def _absent(
    name: str, filter_: pulumi.Input[str], aligner: str, reducer: str
) -> gcp.monitoring.AlertPolicyConditionArgs:
    """True when the series, summed over revisions or states (one series that cannot be retired with a
    revision), reports nothing for `ABSENT_AFTER_SECONDS`."""
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=name,
        condition_absent=gcp.monitoring.AlertPolicyConditionConditionAbsentArgs(
            filter=filter_,
            duration=seconds(ABSENT_AFTER_SECONDS),
            aggregations=[
                gcp.monitoring.AlertPolicyConditionConditionAbsentAggregationArgs(
                    alignment_period=seconds(60), per_series_aligner=aligner, cross_series_reducer=reducer
                )
            ],
        ),
    )


def absence_alerts(targets: Targets) -> list[AlertSpec]:
    """Silence is not health: the series the SLOs rest on must keep arriving.

    A threshold on a series that stops reporting never fires, and an SLO without data reads
    nothing. Each of these series reports every minute while the system runs: Cloud Run's
    request count because the uptime check calls the service every minute in every stack (min
    instances 0 included); the uptime results themselves; the subscription's state and backlog
    age, which Pub/Sub samples every 60 s. Acks are sparse by nature, so they are missed only
    while the topic receives publish requests. Tickets: the data is missing, not (yet) the users.
    """
    run = cloud_run(targets)
    subscription = {"subscription_id": targets.subscription}
    silent = "silent-signals"
    return [
        AlertSpec(
            key="api-requests-absent",
            display_name="No request count from the API for 15 minutes",
            route=Route.TICKET,
            summary=(
                "Cloud Run reported no request count for the API for 15 minutes although the uptime "
                "check calls it every minute: the availability and latency SLOs are blind."
            ),
            conditions=[
                _absent(
                    "request_count absent for 15 min",
                    metric_filter(REQUESTS, "cloud_run_revision", run),
                    "ALIGN_DELTA",
                    "REDUCE_SUM",
                )
            ],
            runbook=silent,
            runbook_section="api-requests-absent",
        ),
        AlertSpec(
            key="api-uptime-results-absent",
            display_name="No uptime check results for 15 minutes",
            route=Route.TICKET,
            summary=(
                "The uptime check of the API reported no result for 15 minutes: the reachability SLO "
                "and the uptime alert are blind (the check was deleted, disabled or never ran)."
            ),
            conditions=[
                _absent(
                    "check_passed absent for 15 min",
                    uptime_check_passed(targets),
                    "ALIGN_NEXT_OLDER",
                    "REDUCE_COUNT",
                )
            ],
            runbook=silent,
            runbook_section="api-uptime-results-absent",
        ),
        AlertSpec(
            key="ingest-state-absent",
            display_name="No BigQuery subscription state for 15 minutes",
            route=Route.TICKET,
            summary=(
                "Pub/Sub reported no state for the BigQuery subscription for 15 minutes: the "
                "subscription-not-active alert cannot fire (the subscription was deleted or is no "
                "longer a BigQuery subscription)."
            ),
            conditions=[
                _absent(
                    "export_push_subscription_details absent for 15 min",
                    metric_filter(EXPORT_STATE, "pubsub_subscription", subscription),
                    "ALIGN_MAX",
                    "REDUCE_MAX",
                )
            ],
            runbook=silent,
            runbook_section="ingest-state-absent",
        ),
        AlertSpec(
            key="ingest-backlog-absent",
            display_name="No backlog age from the BigQuery subscription for 15 minutes",
            route=Route.TICKET,
            summary=(
                "Pub/Sub reported no oldest-unacked-message age for the BigQuery subscription for 15 "
                "minutes: the freshness SLO is blind."
            ),
            conditions=[
                _absent(
                    "oldest_unacked_message_age absent for 15 min",
                    metric_filter(BACKLOG_AGE, "pubsub_subscription", subscription),
                    "ALIGN_MAX",
                    "REDUCE_MAX",
                )
            ],
            runbook=silent,
            runbook_section="ingest-backlog-absent",
        ),
        AlertSpec(
            key="ingest-acks-missing",
            display_name="The topic receives events but the BigQuery subscription reports no acks",
            route=Route.TICKET,
            summary=(
                "Publish requests reached the topic in the last 15 minutes while the BigQuery "
                "subscription reported no acknowledged message: either it writes nothing, or Pub/Sub "
                "does not count its writes as acks and the correctness SLO's good events read zero."
            ),
            conditions=[
                _absent(
                    "ack_message_count absent for 15 min",
                    metric_filter(ACKS, "pubsub_subscription", subscription),
                    "ALIGN_DELTA",
                    "REDUCE_SUM",
                ),
                _threshold(
                    "publish requests to the topic in 15 min",
                    metric_filter(TOPIC_PUBLISHES, "pubsub_topic", {"topic_id": targets.topic}),
                    above=0,
                    duration=0,
                    aggregations=_aligned("ALIGN_DELTA", ABSENT_AFTER_SECONDS, "REDUCE_SUM"),
                ),
            ],
            combiner="AND",
            runbook=silent,
            runbook_section="ingest-acks-missing",
        ),
    ]
