"""Muxly's one template sandbox: no Airflow secrets, no internals, bounded output and work, fields named."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.exceptions import MuxlyError
from muxly_provider.runtime.variables import TEMPLATE_VARIABLES, render_action_params, template_variables
from muxly_provider.templating import (
    TemplateLimitError,
    TemplateRenderError,
    check_templates,
    render,
    render_value,
)

CONTEXT = {"name": "x", "records": [{"a": 1}, {"a": 2}]}

HUGE = [
    "{{ 'x' * 200000000 }}",
    "{{ 200000000 * 'x' }}",
    "{{ ['x'] * 200000000 }}",
    "{{ [[0] * 1000] * 100000 }}",
    "{{ 'x'|center(200000000) }}",
    "{{ 'x'.center(200000000) }}",
    "{{ 'x'.ljust(200000000) }}",
    "{{ '%0200000000d' % 1 }}",
    "{{ '%0200000000d'|format(1) }}",
    "{{ '{:>200000000}'.format(1) }}",
    "{{ 10 ** 100000000 }}",
    "{{ ('x' * 1000000)|replace('x', 'yy') }}",
    "{{ ('x' * 1000000).replace('x', 'yy') }}",
    "{{ range(100000)|join('x' * 1000) }}",
    "{{ ('x' * 1000).join(range(100000)|map('string')) }}",
    "{{ ('x\n' * 500000)|indent(1000) }}",
    "{{ ('x' * 1000000)|wordwrap(1, wrapstring='y' * 1000) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(n=3) %}{% for i in range(60) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "{% macro m() %}{{ 'x' * 1000000 }}{% endmacro %}{{ m() ~ m() }}",
    "{% set a %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}",
]


@pytest.fixture(autouse=True, scope="module")
def _configuration_loaded() -> None:
    """Airflow's configuration is imported once, outside the timed renders."""
    from muxly_provider.templating import template_max_bytes

    template_max_bytes()


@pytest.mark.parametrize("template", HUGE)
def test_huge_outputs_fail_fast_with_the_limit_and_field_named(template: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError) as info:
        render(template, CONTEXT, field="action_params.query")
    assert time.perf_counter() - started < 5
    assert isinstance(info.value, MuxlyError)
    assert "action_params.query" in str(info.value)
    assert "[muxly] template_max_bytes" in str(info.value) or "loop iterations" in str(info.value)


def test_the_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(render("{{ 'x' * 2000 }}", CONTEXT)) == 2000
    monkeypatch.setenv("AIRFLOW__MUXLY__TEMPLATE_MAX_BYTES", "1000")
    with pytest.raises(TemplateLimitError, match=r"template_max_bytes \(1000 bytes\)"):
        render("{{ 'x' * 2000 }}", CONTEXT)
    with pytest.raises(TemplateLimitError):
        render("{% for i in range(200) %}0123456789{% endfor %}", CONTEXT)


def test_a_json_template_shares_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__TEMPLATE_MAX_BYTES", "1000")
    template = {"a": "{{ 'x' * 600 }}", "b": ["{{ 'y' * 600 }}"]}
    with pytest.raises(TemplateLimitError) as info:
        render_value(template, CONTEXT, field="config.body_template")
    assert info.value.field == "config.body_template.b[0]"


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ records.__class__ }}"],
)
def test_internals_are_refused_or_empty(template: str) -> None:
    outcome: str
    try:
        outcome = render(template, CONTEXT)
    except TemplateRenderError as exc:
        outcome = str(exc)
    assert outcome == "" or "SecurityError" in outcome or "undefined" in outcome


def test_no_lipsum_and_no_mutation() -> None:
    with pytest.raises(TemplateRenderError, match="lipsum"):
        render("{{ lipsum(100) }}", CONTEXT)
    with pytest.raises(TemplateRenderError, match="SecurityError"):
        render("{{ records.append(1) }}", CONTEXT)


def test_ordinary_templates_still_render() -> None:
    text = render(
        "{% for r in records %}{{ r.a }}{{ ',' if not loop.last }}{% endfor %} {{ name|upper }} "
        "{{ '%05d'|format(42) }} {{ '{:>4}'.format(7) }} {{ name ~ '-' ~ name }} {{ 'ab' * 2 }}",
        CONTEXT,
    )
    assert text == "1,2 X 00042    7 x-x abab"
    assert render("<p>{{ v }}</p>", {"v": "<b>"}, html=True) == "<p>&lt;b&gt;</p>"
    assert render_value({"items": "{{records}}", "n": "{{ records|length }}"}, CONTEXT) == {
        "items": CONTEXT["records"],
        "n": 2,
    }


def test_syntax_errors_name_the_field() -> None:
    with pytest.raises(TemplateRenderError) as info:
        check_templates({"data_spec": {"query": "SELECT {{ ds "}}, "action_params")
    assert info.value.field == "action_params.data_spec.query"


def _run(conf: dict[str, object] | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="muxly__j",
        run_id="manual__2026-11-26",
        conf=conf or {},
        data_interval_start=datetime(2026, 11, 25, tzinfo=UTC),
        data_interval_end=datetime(2026, 11, 26, tzinfo=UTC),
    )


def test_action_params_context_is_the_documented_one() -> None:
    when = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)
    variables = template_variables(_run({"payload": {"order": 7}}), when, {"region": "eu"})
    assert set(variables) == set(TEMPLATE_VARIABLES)
    params = {
        "data_spec": {
            "query_params": {
                "day": "{{ ds }}",
                "nodash": "{{ ds_nodash }}",
                "start": "{{ data_interval_start.strftime('%Y-%m-%d') }}",
                "run": "{{ run_id }}/{{ dag_id }}",
                "order": "{{ payload.order }}",
                "region": "{{ params.region }}",
                "year": "{{ YEAR }}",
            }
        },
        "destination_ids": ["d1"],
        "limit": 5,
    }
    rendered = render_action_params(params, variables)
    assert rendered["data_spec"]["query_params"] == {
        "day": "2026-11-26",
        "nodash": "20261126",
        "start": "2026-11-25",
        "run": "manual__2026-11-26/muxly__j",
        "order": "7",
        "region": "eu",
        "year": "2026",
    }
    assert rendered["limit"] == 5 and rendered["destination_ids"] == ["d1"]


@pytest.mark.parametrize("name", ["conn", "var", "ti", "task", "macros", "dag_run", "task_instance"])
def test_airflow_context_names_are_absent(name: str) -> None:
    variables = template_variables(_run(), datetime(2026, 11, 26, tzinfo=UTC))
    assert render(f"[{{{{ {name} }}}}]", variables) == "[]"
    with pytest.raises(TemplateRenderError, match="undefined"):
        render_action_params({"q": f"{{{{ {name}.anything.password }}}}"}, variables)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="x{}%*~+|'() 0123456789.rangejoicmup", max_size=40),
)
def test_arbitrary_templates_never_escape_the_error_family(text: str) -> None:
    try:
        result = render(text, CONTEXT)
    except TemplateRenderError:
        return
    assert len(result.encode()) <= 1_048_576
