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
    CONTRACT_BREACHES,
    PUBLISH_RESPONSES,
    REJECTED_PUBLISHES,
    WAREHOUSE_BYTES_BILLED,
    WAREHOUSE_LATENCY,
    WAREHOUSE_QUERIES,
    LogMetricSpec,
)
from airline_platform.monitoring.metrics import (
    ACKS,
    BACKLOG_AGE,
    CPU,
    DEAD_LETTERED,
    DEAD_LETTERS,
    EXPORT_STATE,
    INSTANCES,
    LATENCIES,
    REQUESTS,
    UNDELIVERED,
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

    @property
    def run_labels(self) -> dict[str, str]:
        return {"service_name": self.service, "location": self.region}


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
    filter_: str,
    aggregation: dash.Aggregation | None = None,
    legend: str = "",
    plot_type: int = dash.XyChart.DataSet.PlotType.LINE,
) -> dash.XyChart.DataSet:
    return dash.XyChart.DataSet(
        time_series_query=dash.TimeSeriesQuery(
            time_series_filter=dash.TimeSeriesFilter(filter=filter_, aggregation=aggregation)
        ),
        plot_type=plot_type,
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


Tile = tuple[int, int, dash.Widget]  # (width, height, widget)
HALF, THIRD = COLUMNS // 2, COLUMNS // 3


def widgets(d: DashboardInputs) -> list[Tile]:
    """The sections in reading order; `layout` places them on the grid."""
    return [*_introduction(), *_golden_signals(d), *_inside_the_api(d), *_ingest(d), *_slos(d)]


def _introduction() -> list[Tile]:
    text = dash.Text(
        content=(
            "**Golden signals**: are API consumers served? **Ingest**: do events reach BigQuery "
            "in time and intact? **SLOs**: how much error budget is left - ship while it lasts, "
            "stabilise when it runs out. Every alert links its runbook in `docs/runbooks/`."
        ),
        format_=dash.Text.Format.MARKDOWN,
    )
    return [(COLUMNS, 3, dash.Widget(title="How to read this dashboard", text=text))]


def _ratio(title: str, numerator: str, denominator: str) -> dash.Widget:
    """One line: the per-second rate of `numerator` over that of `denominator`."""
    rate = _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM)
    ratio = dash.TimeSeriesFilterRatio(
        numerator=dash.TimeSeriesFilterRatio.RatioPart(filter=numerator, aggregation=rate),
        denominator=dash.TimeSeriesFilterRatio.RatioPart(filter=denominator, aggregation=rate),
    )
    data = dash.XyChart.DataSet(
        time_series_query=dash.TimeSeriesQuery(time_series_filter_ratio=ratio),
        plot_type=dash.XyChart.DataSet.PlotType.LINE,
    )
    return dash.Widget(title=title, xy_chart=dash.XyChart(data_sets=[data]))


def _golden_signals(d: DashboardInputs) -> list[Tile]:
    run = d.run_labels
    total = filter_text(REQUESTS, "cloud_run_revision", run)
    errors = filter_text(REQUESTS, "cloud_run_revision", run, {"response_code_class": "5xx"})
    latency = filter_text(LATENCIES, "cloud_run_revision", run)
    by_class = _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.response_code_class"])
    percentiles = (
        ("p50", Reducer.REDUCE_PERCENTILE_50),
        ("p95", Reducer.REDUCE_PERCENTILE_95),
        ("p99", Reducer.REDUCE_PERCENTILE_99),
    )
    # Instances per state, each the minute's mean (sums of means are means of sums; sums of maxima
    # taken at different moments are not a count), stacked: the top edge is the total.
    instances = _series(
        filter_text(INSTANCES, "cloud_run_revision", run),
        _aggregation(Aligner.ALIGN_MEAN, Reducer.REDUCE_SUM, ["metric.label.state"]),
        plot_type=dash.XyChart.DataSet.PlotType.STACKED_AREA,
    )
    cpu = filter_text(CPU, "cloud_run_revision", run)
    return [
        (COLUMNS, 2, _header("API golden signals", f"Cloud Run service {d.service} ({d.region})")),
        (THIRD, 12, _chart("Traffic: requests/s by response class", [_series(total, by_class)])),
        (THIRD, 12, _ratio("5xx share of requests", errors, total)),
        (
            THIRD,
            12,
            _chart(
                "Latency (ms): p50, p95, p99",
                [
                    _series(latency, _aggregation(Aligner.ALIGN_DELTA, reducer), legend=name)
                    for name, reducer in percentiles
                ],
                threshold=("latency SLO threshold", d.latency_threshold_ms),
            ),
        ),
        (
            HALF,
            12,
            _chart(
                "Saturation: instances by state (429s start at the limit)",
                [instances],
                threshold=("maxInstances", d.max_instances),
            ),
        ),
        (
            HALF,
            12,
            _chart(
                "Saturation: container CPU utilisation p99",
                [_series(cpu, _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_99))],
            ),
        ),
    ]


def _inside_the_api(d: DashboardInputs) -> list[Tile]:
    run = d.run_labels

    def log_metric(spec: LogMetricSpec) -> str:
        return filter_text(spec.metric_type, "cloud_run_revision", run)

    charts = (
        (
            "BigQuery queries per second, by outcome (bytes-limit: refused by the cost cap)",
            WAREHOUSE_QUERIES,
            _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.outcome"]),
        ),
        (
            "BigQuery query latency (ms) p95, by query shape",
            WAREHOUSE_LATENCY,
            _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_95, ["metric.label.shape"]),
        ),
        (
            "Bytes billed per query p95, by query shape",
            WAREHOUSE_BYTES_BILLED,
            _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_PERCENTILE_95, ["metric.label.shape"]),
        ),
        (
            "Publishes per second by status (Cloud Run's request log: refusals before the container too)",
            PUBLISH_RESPONSES,
            _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.status"]),
        ),
        (
            "Publishes the API refused per second, by reason",
            REJECTED_PUBLISHES,
            _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM, ["metric.label.reason"]),
        ),
    )
    return [
        (COLUMNS, 2, _header("Inside the API", "Log-based: Cloud Run's request log and the API's own lines")),
        (
            THIRD,
            12,
            _ratio(
                "BigQuery queries per request (the cache's miss share; lower is cheaper)",
                log_metric(WAREHOUSE_QUERIES),
                filter_text(REQUESTS, "cloud_run_revision", run),
            ),
        ),
        *((THIRD, 12, _chart(title, [_series(log_metric(spec), agg)])) for title, spec, agg in charts),
        (
            THIRD,
            12,
            _chart(
                "Stored rows withheld for breaking the contract",
                [
                    _series(
                        log_metric(CONTRACT_BREACHES), _aggregation(Aligner.ALIGN_DELTA, Reducer.REDUCE_SUM)
                    )
                ],
            ),
        ),
    ]


def _ingest(d: DashboardInputs) -> list[Tile]:
    sub = {"subscription_id": d.subscription}
    rate = _aggregation(Aligner.ALIGN_RATE, Reducer.REDUCE_SUM)
    return [
        (COLUMNS, 2, _header("Ingest", f"BigQuery subscription {d.subscription}")),
        (
            HALF,
            12,
            _chart(
                "Throughput: events written vs dead-lettered per second",
                [
                    _series(
                        filter_text(ACKS, "pubsub_subscription", sub), rate, legend="written to BigQuery"
                    ),
                    _series(
                        filter_text(DEAD_LETTERS, "pubsub_subscription", sub, DEAD_LETTERED),
                        rate,
                        legend="dead-lettered",
                    ),
                ],
            ),
        ),
        (
            HALF,
            12,
            _chart(
                "Backlog age: oldest event not yet in BigQuery (s)",
                [
                    _series(
                        filter_text(BACKLOG_AGE, "pubsub_subscription", sub), _aggregation(Aligner.ALIGN_MAX)
                    )
                ],
                threshold=("freshness SLO threshold", d.freshness_threshold_seconds),
            ),
        ),
        (
            HALF,
            12,
            _chart(
                "Dead letters waiting for triage",
                [
                    _series(
                        filter_text(
                            UNDELIVERED,
                            "pubsub_subscription",
                            {"subscription_id": d.dead_letter_subscription},
                        ),
                        _aggregation(Aligner.ALIGN_MAX),
                    )
                ],
            ),
        ),
        (
            HALF,
            12,
            _chart(
                "BigQuery subscription state (anything but ACTIVE stops ingest)",
                [
                    _series(
                        filter_text(EXPORT_STATE, "pubsub_subscription", sub),
                        _aggregation(
                            Aligner.ALIGN_MAX, Reducer.REDUCE_MAX, ["metric.label.subscription_state"]
                        ),
                    )
                ],
            ),
        ),
    ]


def _slos(d: DashboardInputs) -> list[Tile]:
    return [
        (COLUMNS, 2, _header("SLOs and error budgets", "Rolling 30 days; goals per environment")),
        *((COLUMNS // len(d.slos), 8, _budget_scorecard(slo)) for slo in d.slos),
        (HALF, 12, _compliance_chart(d.slos)),
        (HALF, 12, _burn_rate_chart(d.slos)),
        (COLUMNS, 10, dash.Widget(title="Open incidents", incident_list=dash.IncidentList())),
    ]


def layout(tiles: Sequence[Tile]) -> dash.MosaicLayout:
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
