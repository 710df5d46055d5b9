"""The cost estimate: each setting moves its own line, totals recompute from the printed inputs,
the PR delta names what moved, and the price refresh reads the Catalog API's answer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from airline_platform.cost import model, prices, report
from airline_platform.cost.__main__ import main as cost_main
from airline_platform.cost.traffic import Measured, Traffic, TrafficError
from airline_platform.plan import Plan, render, stack_config

DATA = Path(__file__).with_name("data")
PRICES = prices.PriceTable.load()


def estimate_of(
    plan: Plan, measured: Measured | None = None, traffic: Traffic | None = None
) -> model.Estimate:
    traffic = traffic or Traffic.from_config(stack_config(plan.stack))
    return model.estimate(plan.stack, plan.resources, traffic, PRICES, measured)


def moved(before: model.Estimate, after: model.Estimate) -> set[str]:
    old = {line.key: line.amount for line in before.lines}
    return {line.key for line in after.lines if abs(line.amount - old[line.key]) > 1e-9}


def test_min_instances_move_only_the_idle_instance_lines(plans: dict[str, Plan]) -> None:
    warm = render("dev", {"airline-data-platform:minInstances": "1"})
    assert moved(estimate_of(plans["dev"]), estimate_of(warm)) == {
        "api-service (Cloud Run): min instances, idle CPU",
        "api-service (Cloud Run): min instances, idle memory",
    }


def test_partition_expiry_moves_only_the_storage_line(plans: dict[str, Plan]) -> None:
    longer = render("dev", {"airline-data-platform:partitionExpirationDays": "120"})  # from 30
    before, after = estimate_of(plans["dev"]), estimate_of(longer)
    assert moved(before, after) == {
        "warehouse-events-table (BigQuery): active storage",
        "warehouse-events-table (BigQuery): long-term storage",
    }
    storage = {line.key: line.inputs["keptDays"] for line in after.lines if "keptDays" in line.inputs}
    assert storage["warehouse-events-table (BigQuery): long-term storage"] == 120


def test_log_volume_moves_only_the_logging_line(plans: dict[str, Plan]) -> None:
    quieter = Measured(request_log_bytes=600)  # e.g. Cloud Run's request log excluded in part
    before, after = estimate_of(plans["prod"]), estimate_of(plans["prod"], quieter)
    assert moved(before, after) == {"project logs (Cloud Logging): ingestion"}
    assert after.total < before.total


def test_every_amount_recomputes_from_its_printed_inputs(plans: dict[str, Plan]) -> None:
    cost = estimate_of(plans["prod"])
    for line in cost.lines:
        price = PRICES.price(line.price_key)
        free = price.free if price.free_scope == "project" else 0
        assert line.amount == pytest.approx(max(line.quantity - free, 0) / price.per * price.price), line.key
    assert cost.total == pytest.approx(sum(line.amount for line in cost.lines))
    text = "\n".join(report.table(cost))
    assert report.money(cost.total) in text
    # The query line prints the 10 MiB minimum and the bytes a query bills.
    (query,) = (line for line in cost.lines if line.item == "queries, get")
    assert "max(10 MiB," in query.formula
    assert query.inputs["bytesBilledPerQuery"] >= 10 * 2**20


def test_below_the_minimum_a_query_bills_10_mib(plans: dict[str, Plan]) -> None:
    quiet = replace(Traffic.from_config(stack_config("dev")), events_per_second=0.0)
    for line in estimate_of(plans["dev"], traffic=quiet).lines:
        if line.item.startswith("queries"):
            assert line.inputs["bytesBilledPerQuery"] == 10 * 2**20, line.item


def test_ten_times_the_traffic_grows_queries_fastest(plans: dict[str, Plan]) -> None:
    base = estimate_of(plans["prod"])
    tenfold = estimate_of(plans["prod"], traffic=base.traffic.scaled(10))
    growth = {
        line.key: line.amount / base_line.amount
        for line, base_line in zip(tenfold.lines, base.lines, strict=True)
        if base_line.amount > 1
    }
    assert max(growth, key=growth.__getitem__).startswith("warehouse-events-table (BigQuery): queries")


def test_a_stack_without_a_traffic_declaration_is_refused() -> None:
    with pytest.raises(TrafficError, match="declares no"):
        Traffic.from_config({})
    config = stack_config("dev")
    bad = json.loads(config["airline-data-platform:traffic"]) | {"mix": {"get": 0.5, "publish": 0.2}}
    with pytest.raises(TrafficError, match="mix"):
        Traffic.from_config({"airline-data-platform:traffic": json.dumps(bad)})


def test_diff_says_what_moved_the_estimate(plans: dict[str, Plan], tmp_path: Path, capsys: Any) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    base.mkdir()
    head.mkdir()
    warm = render("dev", {"airline-data-platform:minInstances": "1"})
    (base / "dev.cost.json").write_text(model.dumps(estimate_of(plans["dev"])))
    (head / "dev.cost.json").write_text(model.dumps(estimate_of(warm)))
    (head / "prod.cost.json").write_text(model.dumps(estimate_of(plans["prod"])))
    assert cost_main(["diff", "--base", str(base), "--head", str(head), "dev", "prod"]) == 0
    out = capsys.readouterr().out
    assert "| api-service (Cloud Run): min instances, idle CPU | $0.00 |" in out
    assert "minInstances 0 -> 1" in out
    assert "#### prod: $" in out
    assert "no estimate in the base plans" in out
    assert "logging" not in out.lower()  # lines that did not move are not listed


def test_refresh_reads_the_catalog_answer() -> None:
    """A Catalog API answer in the documented shape (services.skus.list): two pages for Cloud Run."""
    pages = json.loads((DATA / "billing_catalog_skus.json").read_text())

    def fetch(service: str, token: str | None) -> dict[str, Any]:
        return pages[service][token or ""]

    table = json.loads(prices.PRICES_PATH.read_text())
    updated, unmatched = prices.refresh(table, fetch, date(2027, 1, 4))
    assert updated["checked"] == "2027-01-04"
    run = updated["prices"]
    assert run["run.cpu_request"]["price"] == pytest.approx(0.0000252)  # the second page's SKU
    assert run["run.memory_request"]["price"] == pytest.approx(0.0000026)  # GiB-second from byte-seconds
    assert run["run.cpu_request"]["catalog"]["sku"] == "CPU-EUW1"
    assert "run.requests" in " ".join(unmatched)  # in the answer only for another region
    assert table["prices"]["run.cpu_request"]["price"] == 0.000024  # the loaded table is not changed


def test_scaled_prices_the_written_plans_at_a_multiple_of_their_traffic(
    plans: dict[str, Plan], tmp_path: Path, capsys: Any
) -> None:
    (tmp_path / "prod.json").write_text(json.dumps(plans["prod"].resources))
    (tmp_path / "prod.cost.json").write_text(model.dumps(estimate_of(plans["prod"])))
    assert cost_main(["scaled", "--plans", str(tmp_path), "--factor", "10", "--same-queries", "prod"]) == 0
    out = capsys.readouterr().out
    assert "prod at 10x its declared traffic:" in out
    assert "200 requests/s" in out
    assert "99.6% cache hits" in out  # 96% hits and the same queries: 1 - 4% / 10
    tenfold = estimate_of(
        plans["prod"], traffic=estimate_of(plans["prod"]).traffic.scaled(10, same_queries=True)
    )
    assert report.money(tenfold.total) in out


def test_a_query_above_the_cost_cap_is_refused_and_not_billed(plans: dict[str, Plan]) -> None:
    """At 10x prod's events a default week scans more than maxBytesBilled (1 GiB): BigQuery refuses it."""
    busy = estimate_of(plans["prod"]).traffic.scaled(10)
    (line,) = (x for x in estimate_of(plans["prod"], traffic=busy).lines if x.item == "queries, list default")
    assert line.inputs["bytesBilledPerQuery"] > line.inputs["maxBytesBilled"] == 2**30
    assert "refused, not billed" in line.formula
    assert line.amount == 0


def test_the_docs_quote_the_model(plans: dict[str, Plan]) -> None:
    """docs/operations.md and the README quote each stack's total as make plan prints it today."""
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "operations.md").read_text() + (root / "README.md").read_text()
    for stack, plan in plans.items():
        total = report.money(estimate_of(plan).total)
        assert f"| {stack} | " in docs
        assert docs.count(total) >= 2, f"{stack}: {total} is not what the docs quote"
