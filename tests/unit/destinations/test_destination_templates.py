"""Templates of destinations render run and record variables in a sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from muxly_provider.destinations.base import RunInfo
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    render_value,
    template_context,
)

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="sales",
    logical_date=datetime(2026, 11, 26, 6, 30, tzinfo=UTC),
)
RECORDS = [{"order_id": "A1", "amount": 12.5, "user": {"country": "US"}}, {"order_id": "A2", "amount": 3}]


def _context(**kwargs: object) -> dict[str, object]:
    return template_context(RUN, destination_id="d1", records=RECORDS, **kwargs)  # type: ignore[arg-type]


def test_run_and_record_variables() -> None:
    text = render(
        "{{count}} from {{connector_id}} on {{date}}: first {{order_id}} ({{user.country}})", _context()
    )
    assert text == "2 from sales on 2026-11-26: first A1 (US)"


def test_template_variables_are_paths_into_the_record() -> None:
    context = _context(variables={"country": "$.user.country", "missing": "nope.here"})
    assert render("{{country}}-{{missing}}", context) == "US-None"


def test_per_record_context() -> None:
    context = template_context(RUN, destination_id="d1", records=RECORDS, record=RECORDS[1])
    assert render("{{order_id}} {{count}}", context) == "A2 1"


def test_missing_names_render_empty_and_html_is_escaped() -> None:
    assert render("[{{nothing}}]", _context()) == "[]"
    context = template_context(RUN, destination_id="d", records=[{"name": "<b>x</b>"}])
    assert render("{{name}}", context, html=True) == "&lt;b&gt;x&lt;/b&gt;"


def test_json_templates_keep_value_types() -> None:
    body = render_value({"items": "{{records}}", "n": "{{ count }}", "label": "run {{run_id}}"}, _context())
    assert body == {"items": RECORDS, "n": 2, "label": "run manual__1"}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ records.append(1) }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_refuses_internals_and_mutation(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        render(source, _context())


def test_syntax_errors_are_reported_with_the_line() -> None:
    with pytest.raises(TemplateRenderError, match="line 1"):
        check_template("{{ unclosed")
