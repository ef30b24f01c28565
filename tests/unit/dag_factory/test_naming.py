"""Task ids of destinations: stable, collision-free, within Airflow's limits."""

from __future__ import annotations

import re

import pytest

from muxly_provider.dag_factory.naming import delivery_task_id, safe_id


@pytest.mark.parametrize("value", ["crm", "crm_eu", "a.b-c_9", "x" * 200])
def test_safe_ids_stay_as_they_are(value: str) -> None:
    assert safe_id(value) == value


def test_ids_that_clean_to_the_same_name_do_not_collide() -> None:
    ids = ["crm:eu", "crm@eu", "crm eu", "crm_eu", "crm/eu"]
    names = [delivery_task_id(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert delivery_task_id("crm_eu") == "deliver__crm_eu"
    assert re.fullmatch(r"deliver__crm_eu_[0-9a-f]{8}", delivery_task_id("crm:eu"))
    assert delivery_task_id("crm:eu") == delivery_task_id("crm:eu")  # stable across calls and processes


def test_long_ids_are_cut_and_kept_distinct() -> None:
    first, second = "d" * 300 + "1", "d" * 300 + "2"
    assert len(delivery_task_id(first)) <= 250
    assert safe_id(first) != safe_id(second)
    assert safe_id("") != ""
