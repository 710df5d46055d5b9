"""The dated price table (`prices.json`) and its refresh from the Cloud Billing Catalog API.

The refresh calls `GET https://cloudbilling.googleapis.com/v1/services/{service}/skus`
(https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list) with the caller's
Application Default Credentials, picks for each price the SKU whose description matches and
whose `serviceRegions` include the table's region, and takes the first tier above zero of its
current `pricingExpression` (`unitPrice` = units + nanos / 1e9, per `baseUnitConversionFactor`
base units). Prices it cannot match stay as they are and are listed, so a partial refresh is seen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")
CATALOG = "https://cloudbilling.googleapis.com/v1/services/{service}/skus"  # service: its id


@dataclass(frozen=True)
class Price:
    price: float
    per: float
    unit: str
    free: float
    free_scope: str
    source: str

    @property
    def unit_price(self) -> float:
        return self.price / self.per


@dataclass(frozen=True)
class PriceTable:
    checked: str
    region: str
    entries: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path = PRICES_PATH) -> PriceTable:
        data = json.loads(path.read_text())
        return cls(data["checked"], data["region"], data["prices"])

    def price(self, key: str) -> Price:
        e = self.entries[key]
        return Price(e["price"], e["per"], e["unit"], e["free"], e["free_scope"], e["source"])


# A page of the Catalog API's answer: (service id, page token) -> the JSON body.
Fetch = Callable[[str, str | None], dict[str, Any]]


def _skus(fetch: Fetch, service: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = fetch(service, token)
        yield from page.get("skus", [])
        token = page.get("nextPageToken") or None
        if not token:
            return


def _unit_price(sku: dict[str, Any]) -> tuple[float, float]:
    """(price per usage unit, base units per usage unit) of the SKU's current first paid tier."""
    expression = sku["pricingInfo"][0]["pricingExpression"]
    rates = [r["unitPrice"] for r in expression["tieredRates"]]
    paid = [int(r.get("units") or 0) + r.get("nanos", 0) / 1e9 for r in rates]
    return next((p for p in paid if p > 0), paid[-1]), float(expression.get("baseUnitConversionFactor", 1))


def refresh(table: dict[str, Any], fetch: Fetch, today: date) -> tuple[dict[str, Any], list[str]]:
    """A copy of the table with every matched price replaced; and the keys left as they were."""
    region = table["region"]
    updated = json.loads(json.dumps(table))
    unmatched = []
    by_service: dict[str, list[dict[str, Any]]] = {}
    for key, entry in updated["prices"].items():
        catalog = entry["catalog"]
        skus = by_service.setdefault(catalog["service"], list(_skus(fetch, catalog["service"])))
        pattern = re.compile(re.escape(catalog["description"]), re.IGNORECASE)
        match = next(
            (
                s
                for s in skus
                if pattern.search(s["description"])
                and (region in s.get("serviceRegions", []) or "global" in s.get("serviceRegions", []))
            ),
            None,
        )
        if match is None:
            unmatched.append(key)
            continue
        usage_price, factor = _unit_price(match)
        # `per` of the table's units, each `base_units` of the catalog's base units (bytes, seconds).
        price = usage_price / factor * entry["per"] * catalog.get("base_units", 1)
        if not entry["price"] / 10 <= price <= entry["price"] * 10:
            unmatched.append(f"{key} (the catalog's {price:.6g} is off by 10x or more: units?)")
            continue
        entry["price"] = round(price, 10)
        catalog["sku"] = match["skuId"]
    updated["checked"] = today.isoformat()
    return updated, unmatched


def google_fetch() -> Fetch:
    """Pages of the Catalog API, authorised with Application Default Credentials."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-billing.readonly"])
    session = AuthorizedSession(credentials)

    def fetch(service: str, token: str | None) -> dict[str, Any]:
        params = {"currencyCode": "USD", "pageSize": "5000"} | ({"pageToken": token} if token else {})
        response = session.get(CATALOG.format(service=service), params=params, timeout=60)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return fetch
