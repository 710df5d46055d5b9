"""The stack's operations dashboard, built from typed `monitoring_dashboard_v1` messages.

Read top to bottom it answers, in order: are API consumers served (golden signals), is data
reaching the warehouse in time and intact (ingest), and how much risk may we still take (error
budget left per SLO: ship while budget remains, stabilise when it runs out). It is serialised
without default fields and with enum names, the form the Dashboards API returns, so a preview
shows no permanent diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.cloud import monitoring_dashboard_v1 as dash

from airline_platform.monitoring.alerting import BURN_RATE_WINDOWS
from airline_platform.monitoring.catalog import filter_text
from airline_platform.monitoring.log_metrics import (
    CACHE_LOOKUPS,
    CONTRACT_BREACHES,
    REJECTED_PUBLISHES,
    WAREHOUSE_BYTES_BILLED,
    WAREHOUSE_LATENCY,
    WAREHOUSE_QUERIES,
)

COLUMNS = 48
Aligner = dash.Aggregation.Aligner
Reducer = dash.Aggregation.Reducer


@dataclass(frozen=True)
class SloTile:
    display_name: str
    name: str  # projects/<number>/services/<id>/serviceLevelObjectives/<id>


@dataclass(frozen=True)
class DashboardInputs:
    """Everything the dashboard shows, resolved to plain strings."""

    title: str
    service: str
    region: str
    subscription: str
    dead_letter_subscription: str
    max_instances: int
    latency_threshold_ms: int
    freshness_threshold_seconds: int
    slos: Sequence[SloTile]


def _aggregation(
    aligner: int, reducer: int = Reducer.REDUCE_NONE, group_by: Sequence[str] = ()
) -> dash.Aggregation:
    """Per-minute alignment; enums are proto ints (their names appear in the serialised JSON)."""
    return dash.Aggregation(
        alignment_period={"seconds": 60},
        per_series_aligner=aligner,
        cross_series_reducer=reducer,
        group_by_fields=list(group_by),
    )


def _series(
    filter_: str, aggregation: dash.Aggregation | None = None, legend: str = ""
) -> dash.XyChart.DataSet:
    return dash.XyChart.DataSet(
        time_series_query=dash.TimeSeriesQuery(
            time_series_filter=dash.TimeSeriesFilter(filter=filter_, aggregation=aggregation)
        ),
        plot_type=dash.XyChart.DataSet.PlotType.LINE,
        legend_template=legend,
    )


def _chart(title: str, data_sets: Sequence[dash.XyChart.DataSet], threshold: tuple[str, float] | None = None):
    thresholds = []
    if threshold:
        thresholds = [dash.Threshold(label=threshold[0], value=threshold[1], color=dash.Threshold.Color.RED)]
    return dash.Widget(title=title, xy_chart=dash.XyChart(data_sets=list(data_sets), thresholds=thresholds))


def _header(title: str, subtitle: str) -> dash.Widget:
    return dash.Widget(title=title, section_header=dash.SectionHeader(subtitle=subtitle, divider_below=True))


def _budget_scorecard(slo: SloTile) -> dash.Widget:
    return dash.Widget(
        title=f"{slo.display_name}: error budget left",
        scorecard=dash.Scorecard(
            time_series_query=dash.TimeSeriesQuery(
                time_series_filter=dash.TimeSeriesFilter(filter=f'select_slo_budget_fraction("{slo.name}")')
            ),
            thresholds=[
                dash.Threshold(
                    value=0.25, color=dash.Threshold.Color.RED, direction=dash.Threshold.Direction.BELOW
                ),
                dash.Threshold(
                    value=0.5, color=dash.Threshold.Color.YELLOW, direction=dash.Threshold.Direction.BELOW
                ),
            ],
        ),
    )


def _compliance_chart(slos: Sequence[SloTile]) -> dash.Widget:
    return _chart(
        "SLO compliance over the rolling period",
        [_series(f'select_slo_compliance("{slo.name}")', legend=slo.display_name) for slo in slos],
    )


def _burn_rate_chart(slos: Sequence[SloTile]) -> dash.Widget:
    fast = BURN_RATE_WINDOWS[0]
    return _chart(
        f"Burn rate over {fast.long_seconds // 3600} h (pages above {fast.burn_rate:g}x)",
        [
            _series(f'select_slo_burn_rate("{slo.name}", "{fast.long_seconds}s")', legend=slo.display_name)
            for slo in slos
        ],
        threshold=("fast burn", fast.burn_rate),
    )


def widgets(d: DashboardInputs) -> list[tuple[int, int, dash.Widget]]:
    """(width, height, widget) in reading order; `layout` places them on the grid."""
    run = {"service_name": d.service, "location": d.region}
    requests = "run.googleapis.com/request_count"
    sub = {"subscription_id": d.subscription}
    total = filter_text(requests, "cloud_run_revision", run)
    errors = filter_text(requests, "cloud_run_revision", run, {"response_code_class": "5xx"})
    latency = filter_text("run.googleapis.com/request_latencies", "cloud_run_revision", run)
    error_ratio = dash.Widget(
        title="5xx share of requests",
        xy_chart=dash.XyChart(
            data_sets=[
                dash.XyChart.DataSet(
                    time_series_query=dash.TimeSeriesQuery(
                        time_series_filter_ratio=dash.TimeSeriesFilterRatio(
                            numerator=dash.TimeSeriesFilterRatio.RatioPart(
                                filter=errors,
                                aggregation=_aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM),
                            ),
                            denominator=dash.TimeSeriesFilterRatio.RatioPart(
                                filter=total, aggregation=_aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM)
                            ),
                        )
                    ),
                    plot_type=dash.XyChart.DataSet.PlotType.LINE,
                )
            ]
        ),
    )
    half, third = COLUMNS // 2, COLUMNS // 3
    tiles: list[tuple[int, int, dash.Widget]] = [
        (
            COLUMNS,
            3,
            dash.Widget(
                title="How to read this dashboard",
                text=dash.Text(
                    content=(
                        "**Golden signals**: are API consumers served? **Ingest**: do events reach BigQuery "
                        "in time and intact? **SLOs**: how much error budget is left - ship while it lasts, "
                        "stabilise when it runs out. Every alert links its runbook in `docs/runbooks/`."
                    ),
                    format_=dash.Text.Format.MARKDOWN,
                ),
            ),
        ),
        (COLUMNS, 2, _header("API golden signals", f"Cloud Run service {d.service} ({d.region})")),
        (
            third,
            12,
            _chart(
                "Traffic: requests/s by response class",
                [
                    _series(
                        total,
                        _aggregation(
                            Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.response_code_class"]
                        ),
                    )
                ],
            ),
        ),
        (third, 12, error_ratio),
        (
            third,
            12,
            _chart(
                "Latency (ms): p50, p95, p99",
                [
                    _series(latency, _aggregation(Aligner.ALIGN_DELTA, reducer), legend=name)
                    for name, reducer in (
                        ("p50", Reducer.REDUCE_PERCENTILE_50),
                        ("p95", Reducer.REDUCE_PERCENTILE_95),
                        ("p99", Reducer.REDUCE_PERCENTILE_99),
                    )
                ],
                threshold=("latency SLO threshold", d.latency_threshold_ms),
            ),
        ),
        (
            half,
            12,
            _chart(
                "Saturation: instances (429s start at the limit)",
                [
                    _series(
                        filter_text("run.googleapis.com/container/instance_count", "cloud_run_revision", run),
                        _aggregation(Aligner.ALIGN_MAX, Reducer.REDUCE_SUM, ["metric.label.state"]),
                    )
                ],
                threshold=("maxInstances", d.max_instances),
            ),
        ),
        (
            half,
            12,
            _chart(
                "Saturation: container CPU utilisation p99",
                [
                    _series(
                        filter_text(
                            "run.googleapis.com/container/cpu/utilizations", "cloud_run_revision", run
                        ),
                        _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_99),
                    )
                ],
            ),
        ),
        (COLUMNS, 2, _header("Inside the API", "From its structured logs (log-based metrics)")),
        *(
            (third, 12, _chart(title, [_series(filter_text(metric, "cloud_run_revision", run), aggregation)]))
            for title, metric, aggregation in (
                (
                    "Reads by cache result per second (hit, miss, collapsed, stale)",
                    CACHE_LOOKUPS.metric_type,
                    _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.result"]),
                ),
                (
                    "BigQuery query latency (ms) p95, by query shape",
                    WAREHOUSE_LATENCY.metric_type,
                    _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_95, ["metric.label.shape"]),
                ),
                (
                    "BigQuery queries per second, by outcome (bytes-limit: refused by the cost cap)",
                    WAREHOUSE_QUERIES.metric_type,
                    _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.outcome"]),
                ),
                (
                    "Bytes billed per query p95, by query shape",
                    WAREHOUSE_BYTES_BILLED.metric_type,
                    _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_95, ["metric.label.shape"]),
                ),
                (
                    "Refused publishes per second, by reason",
                    REJECTED_PUBLISHES.metric_type,
                    _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.reason"]),
                ),
                (
                    "Stored rows withheld for breaking the contract",
                    CONTRACT_BREACHES.metric_type,
                    _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_SUM),
                ),
            )
        ),
        (COLUMNS, 2, _header("Ingest", f"BigQuery subscription {d.subscription}")),
        (
            half,
            12,
            _chart(
                "Throughput: events written vs dead-lettered per second",
                [
                    _series(
                        filter_text(
                            "pubsub.googleapis.com/subscription/ack_message_count", "pubsub_subscription", sub
                        ),
                        _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM),
                        legend="written to BigQuery",
                    ),
                    _series(
                        filter_text(
                            "pubsub.googleapis.com/subscription/dead_letter_message_count",
                            "pubsub_subscription",
                            sub,
                        ),
                        _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM),
                        legend="dead-lettered",
                    ),
                ],
            ),
        ),
        (
            half,
            12,
            _chart(
                "Backlog age: oldest event not yet in BigQuery (s)",
                [
                    _series(
                        filter_text(
                            "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
                            "pubsub_subscription",
                            sub,
                        ),
                        _aggregation(Aligner.ALIGN_MAX),
                    )
                ],
                threshold=("freshness SLO threshold", d.freshness_threshold_seconds),
            ),
        ),
        (
            half,
            12,
            _chart(
                "Dead letters waiting for triage",
                [
                    _series(
                        filter_text(
                            "pubsub.googleapis.com/subscription/num_undelivered_messages",
                            "pubsub_subscription",
                            {"subscription_id": d.dead_letter_subscription},
                        ),
                        _aggregation(Aligner.ALIGN_MAX),
                    )
                ],
            ),
        ),
        (
            half,
            12,
            _chart(
                "BigQuery subscription state (anything but ACTIVE stops ingest)",
                [
                    _series(
                        filter_text(
                            "pubsub.googleapis.com/subscription/export_push_subscription_details",
                            "pubsub_subscription",
                            sub,
                        ),
                        _aggregation(
                            Aligner.ALIGN_MAX, Reducer.REDUCE_MAX, ["metric.label.subscription_state"]
                        ),
                    )
                ],
            ),
        ),
        (COLUMNS, 2, _header("SLOs and error budgets", "Rolling 30 days; goals per environment")),
    ]
    tiles += [(COLUMNS // len(d.slos), 8, _budget_scorecard(slo)) for slo in d.slos]
    tiles += [
        (half, 12, _compliance_chart(d.slos)),
        (half, 12, _burn_rate_chart(d.slos)),
        (COLUMNS, 10, dash.Widget(title="Open incidents", incident_list=dash.IncidentList())),
    ]
    return tiles


def layout(tiles: Sequence[tuple[int, int, dash.Widget]]) -> dash.MosaicLayout:
    """Place tiles left to right, wrapping rows, on the mosaic grid."""
    placed, x, y, row_height = [], 0, 0, 0
    for width, height, widget in tiles:
        if x + width > COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append(dash.MosaicLayout.Tile(x_pos=x, y_pos=y, width=width, height=height, widget=widget))
        x, row_height = x + width, max(row_height, height)
    return dash.MosaicLayout(columns=COLUMNS, tiles=placed)


def dashboard(d: DashboardInputs) -> dash.Dashboard:
    return dash.Dashboard(display_name=d.title, mosaic_layout=layout(widgets(d)))


def to_json(board: dash.Dashboard) -> str:
    """Serialise as the API returns it: enum names, no default-valued fields, stable key order."""
    return dash.Dashboard.to_json(
        board,
        use_integers_for_enums=False,
        always_print_fields_with_no_presence=False,
        sort_keys=True,
        indent=None,
    )
