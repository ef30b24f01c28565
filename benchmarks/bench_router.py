"""Benchmark of Muxly's router against hand-written Python doing the same work, in the same run.

Run: ``.venv/bin/python benchmarks/bench_router.py [--records N] [--repeats R]`` (default 1,000,000 records).

Cases (each timed as the best of R runs; ratios are Muxly's throughput over the hand-written one's):

* (a) the condition ``revenue > 1000 AND country == 'US'`` compiled once, vs a hand-written function;
* (b) one route of 5 rules with 3 transformations each through ``Router.route_batch`` (batches of 1,000 as a
  job run feeds it), vs a hand-written loop that copies, transforms and appends the same records;
* (c) the same condition re-parsed for every record (how a naive router works), vs the hand-written function;
  run once over at most 100,000 records, since it is two orders of magnitude slower.

Records are synthetic and deterministic: a pool of 10,000 distinct records, repeated to the wanted count.
Targets (issue 3): (a) >= 0.75x, (b) >= 0.5x.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from muxly_provider.routing import (
    ErrorHandlingSpec,
    Router,
    RouteSpec,
    RuleSpec,
    TransformationSpec,
    compile_condition,
)
from muxly_provider.routing.condition_parser import parse
from muxly_provider.routing.conditions import compile_node

Record = dict[str, Any]
CONDITION = "revenue > 1000 AND country == 'US'"
BATCH = 1000


def make_records(count: int, pool_size: int = 10_000) -> list[Record]:
    """``count`` records cycling through a deterministic pool of distinct records."""
    rng = random.Random(42)
    countries = ("US", "DE", "FR", "GB", "JP", "US", "CA")
    statuses = ("completed", "completed", "cancelled", "pending")
    pool: list[Record] = []
    for i in range(pool_size):
        record: Record = {
            "order_id": f"ORD-{i:06d}",
            "revenue": rng.randint(0, 3000) if i % 5 else round(rng.uniform(0, 3000), 2),
            "country": countries[rng.randrange(len(countries))],
            "status": statuses[rng.randrange(len(statuses))],
            "email": f"user{i}@{'example.com' if i % 3 else 'mail.org'}",
            "price": round(rng.uniform(1, 500), 2),
            "quantity": rng.randint(1, 10),
            "discount_rate": rng.choice((0, 0.05, 0.1, 0.2)),
        }
        if i % 4 == 0:
            record["coupon"] = f"C{i % 97}"
        pool.append(record)
    return (pool * (count // pool_size + 1))[:count]


def hand_condition(record: Record) -> bool:
    """What an engineer writes for ``revenue > 1000 AND country == 'US'`` (records with numeric revenues)."""
    return record.get("revenue", 0) > 1000 and record.get("country") == "US"


def count_matches(condition: Callable[[Record], bool], records: list[Record]) -> int:
    matched = 0
    for record in records:
        if condition(record):
            matched += 1
    return matched


def naive_matches(records: list[Record]) -> int:
    matched = 0
    for record in records:
        if compile_node(parse(CONDITION))(record):
            matched += 1
    return matched


def _step(rule: int, index: int, kind: str, **config: Any) -> TransformationSpec:
    return TransformationSpec(f"t{rule}{index}", kind, config, sequence_order=index)


RULES = (
    (
        CONDITION,
        (
            ("set_field", {"field": "segment", "value": "high"}),
            ("rename_field", {"from": "revenue", "to": "amount"}),
            ("formula", {"output_field": "total", "formula": "price * quantity"}),
        ),
    ),
    (
        "status == 'cancelled'",
        (
            ("remove_field", {"field": "email"}),
            ("set_field", {"field": "flag", "value": "cancelled"}),
            ("format_string", {"template": "Order {{order_id}} from {{country}}", "output_field": "summary"}),
        ),
    ),
    (
        "country IN ('DE', 'FR', 'GB')",
        (
            ("rename_field", {"from": "country", "to": "region"}),
            ("formula", {"output_field": "net", "formula": "price * (1 - discount_rate)"}),
            ("remove_field", {"field": "discount_rate"}),
        ),
    ),
    (
        "email ENDS WITH '@example.com' AND quantity >= 5",
        (
            ("format_string", {"template": "{{email}}: {{quantity}} items", "output_field": "note"}),
            ("set_field", {"field": "bulk", "value": True}),
            ("remove_field", {"field": "status"}),
        ),
    ),
    (
        "NOT EXISTS coupon",
        (
            ("set_field", {"field": "coupon", "value": "NONE"}),
            ("remove_field", {"field": "price"}),
            ("rename_field", {"from": "order_id", "to": "id"}),
        ),
    ),
)


def make_router() -> Router:
    rules = tuple(
        RuleSpec(
            id=f"r{i}",
            name=f"rule {i}",
            condition=condition,
            destination_ids=(f"d{i}",),
            transformations=tuple(_step(i, j, kind, **config) for j, (kind, config) in enumerate(steps)),
            priority=i,
        )
        for i, (condition, steps) in enumerate(RULES)
    )
    return Router([RouteSpec(id="route", name="bench", rules=rules, error_handling=ErrorHandlingSpec())])


def _num(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return value


def hand_route(batch: list[Record]) -> dict[str, list[Record]]:
    """The same 5 rules written by hand: copy per delivery, transform in place, append; count unmatched."""
    d0: list[Record] = []
    d1: list[Record] = []
    d2: list[Record] = []
    d3: list[Record] = []
    d4: list[Record] = []
    unmatched = 0
    for r in batch:
        matched = False
        if hand_condition(r):
            matched = True
            o = dict(r)
            o["segment"] = "high"
            if "revenue" in o:
                o["amount"] = o.pop("revenue")
            o["total"] = _num(o.get("price")) * _num(o.get("quantity"))
            d0.append(o)
        if r.get("status") == "cancelled":
            matched = True
            o = dict(r)
            o.pop("email", None)
            o["flag"] = "cancelled"
            o["summary"] = f"Order {o.get('order_id', '')} from {o.get('country', '')}"
            d1.append(o)
        if r.get("country") in ("DE", "FR", "GB"):
            matched = True
            o = dict(r)
            if "country" in o:
                o["region"] = o.pop("country")
            o["net"] = _num(o.get("price")) * (1 - _num(o.get("discount_rate")))
            o.pop("discount_rate", None)
            d2.append(o)
        email, quantity = r.get("email"), r.get("quantity")
        if isinstance(email, str) and email.endswith("@example.com") and _num(quantity) >= 5:
            matched = True
            o = dict(r)
            o["note"] = f"{o.get('email', '')}: {o.get('quantity', '')} items"
            o["bulk"] = True
            o.pop("status", None)
            d3.append(o)
        if "coupon" not in r:
            matched = True
            o = dict(r)
            o["coupon"] = "NONE"
            o.pop("price", None)
            if "order_id" in o:
                o["id"] = o.pop("order_id")
            d4.append(o)
        if not matched:
            unmatched += 1
    return {"d0": d0, "d1": d1, "d2": d2, "d3": d3, "d4": d4}


def batches(records: list[Record]) -> Iterator[list[Record]]:
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]


def best_of(repeats: int, function: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def report(name: str, count: int, muxly: float, hand: float, target: float | None) -> float:
    ratio = hand / muxly
    verdict = "" if target is None else (" OK" if ratio >= target else f" BELOW TARGET {target}x")
    print(
        f"{name:<44} muxly {count / muxly:>12,.0f} rec/s   hand-written {count / hand:>12,.0f} rec/s   "
        f"ratio {ratio:6.3f}x{verdict}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="records per case (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case, the best counts (default 5)")
    args = parser.parse_args()
    records = make_records(args.records)
    print(f"Python {sys.version.split()[0]}, {len(records):,} records, best of {args.repeats}\n")

    condition = compile_condition(CONDITION)
    hand_time, expected = best_of(args.repeats, lambda: count_matches(hand_condition, records))
    muxly_time, got = best_of(args.repeats, lambda: count_matches(condition, records))
    assert got == expected, (got, expected)
    report("(a) condition, compiled", len(records), muxly_time, hand_time, 0.75)

    def run_router() -> dict[str, int]:
        router = make_router()
        counts: dict[str, int] = {}
        for batch in batches(records):
            for dest, out in router.route_batch(batch).items():
                counts[dest] = counts.get(dest, 0) + len(out)
        return counts

    def run_hand() -> dict[str, int]:
        counts: dict[str, int] = {}
        for batch in batches(records):
            for dest, out in hand_route(batch).items():
                counts[dest] = counts.get(dest, 0) + len(out)
        return counts

    sample = records[:BATCH]
    assert make_router().route_batch(sample) == {k: v for k, v in hand_route(sample).items() if v}
    hand_time, expected_counts = best_of(args.repeats, run_hand)
    muxly_time, counts = best_of(args.repeats, run_router)
    assert counts == {k: v for k, v in expected_counts.items() if v}, (counts, expected_counts)
    report("(b) route: 5 rules x 3 transformations", len(records), muxly_time, hand_time, 0.5)

    subset = records[: min(len(records), 100_000)]
    hand_time, expected = best_of(1, lambda: count_matches(hand_condition, subset))
    naive_time, got = best_of(1, lambda: naive_matches(subset))
    assert got == expected
    report(f"(c) condition re-parsed per record ({len(subset):,})", len(subset), naive_time, hand_time, None)


if __name__ == "__main__":
    main()
