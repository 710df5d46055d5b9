"""The estimate for people: a table per stack for `make plan`, and the markdown delta for a PR."""

from __future__ import annotations

from airline_platform.cost.model import Estimate, Line


def money(amount: float) -> str:
    return f"${amount:,.2f}"


_PER = {2**20: "MiB", 2**30: "GiB", 2**40: "TiB", 10**9: "GB"}


def _per(line: Line) -> str:
    """The unit a price is listed per: MiB, GiB-month, 1,000 executions, vCPU-second."""
    if line.unit.startswith("byte") and int(line.per) in _PER:
        return _PER[int(line.per)] + line.unit.removeprefix("byte")
    count = {1: "", 1000: "thousand ", 10**6: "million "}.get(int(line.per), f"{line.per:,.0f} ")
    return f"{count}{line.unit}s" if count else line.unit


def _price(line: Line) -> str:
    return f"${line.price:g}/{_per(line)}"


def _quantity(line: Line, value: float) -> str:
    shown = value / line.per
    return f"{shown:,.0f}" if shown >= 1000 else f"{shown:,.4g}"


def table(estimate: Estimate) -> list[str]:
    """One row per line: what, the formula with its inputs, quantity x price (less a free allotment) = $."""
    t = estimate.traffic
    mix = ", ".join(f"{kind} {share:.0%}" for kind, share in t.mix.items())
    lines = [
        f"  cost          {money(estimate.total)} a month at {t.requests_per_second:g} requests/s ({mix}; "
        f"{t.cache_hit_ratio * 100:.3g}% cache hits), {t.events_per_second:g} events/s; "
        f"prices of {estimate.prices_checked}"
    ]
    for line in sorted(estimate.lines, key=lambda item: -item.amount):
        free = f" - {_quantity(line, line.free)} free" if line.free else ""
        quantity = _quantity(line, line.quantity)
        lines.append(
            f"    {money(line.amount):>9}  {line.key}: {line.formula}"
            f" = ({quantity}{free}) {_per(line)} x {_price(line)}"
        )
    return lines


def _moved(before: Line | None, after: Line | None) -> str:
    """What changed between two versions of a line: its inputs, else its price."""
    if before is None or after is None:
        return "new line" if before is None else "line removed"
    changed = [
        f"{name} {before.inputs.get(name)!r} -> {after.inputs.get(name)!r}"
        for name in sorted(set(before.inputs) | set(after.inputs))
        if before.inputs.get(name) != after.inputs.get(name)
    ]
    if (before.price, before.per) != (after.price, after.per):
        changed.append(f"price {_price(before)} -> {_price(after)}")
    return "; ".join(changed) or "-"


def diff(stack: str, base: Estimate | None, head: Estimate | None) -> str:
    """Markdown: the stack's total before and after, and every line whose amount moved, with why."""
    if head is None:
        return f"#### {stack}: no estimate in the head plans\n"
    if base is None:
        return f"#### {stack}: {money(head.total)} a month (no estimate in the base plans to compare with)\n"
    delta = head.total - base.total
    out = [
        f"#### {stack}: {money(base.total)} -> {money(head.total)} a month ({'+' if delta >= 0 else '-'}"
        f"{money(abs(delta))})",
        "",
    ]
    before = {line.key: line for line in base.lines}
    after = {line.key: line for line in head.lines}
    rows = [
        (key, before.get(key), after.get(key))
        for key in [*before, *(k for k in after if k not in before)]
        if round((before[key].amount if key in before else 0), 4)
        != round((after[key].amount if key in after else 0), 4)
    ]
    if not rows:
        out.append("No line moved.")
        return "\n".join(out) + "\n"
    out += ["| line | before | after | what moved it |", "|---|---:|---:|---|"]
    for key, b, a in rows:
        out.append(
            f"| {key} | {money(b.amount) if b else '-'} | {money(a.amount) if a else '-'} | "
            f"{_moved(b, a).replace('|', '/')} |"
        )
    return "\n".join(out) + "\n"
