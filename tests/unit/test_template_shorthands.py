"""Muxly's shorthands (``${NAME}``, ``{name}``, ``{{ path }}``) compile into the one Jinja environment."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.connectors.api import ApiConnector, fill_path_params
from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.exceptions import MuxlyConfigError, MuxlyConnectorError
from muxly_provider.routing import ErrorHandlingSpec, Router, RouteSpec, RuleSpec, TransformationSpec
from muxly_provider.routing.transformations import TransformStepError, compile_transformations
from muxly_provider.runtime.variables import (
    date_variables,
    render_action_params,
    resolve,
    template_variables,
)
from muxly_provider.templating import (
    Shorthands,
    TemplateLimitError,
    TemplateRenderError,
    check_template,
    compiled,
    render,
)
from muxly_provider.templating.records import FieldTemplate, compile_field_template
from tests.unit.connectors.fake_servers import LocalServer, Reply

WHEN = datetime(2026, 3, 1, 6, 5, 4, tzinfo=UTC)


def _variables(conf: dict[str, Any] | None = None) -> dict[str, Any]:
    run = SimpleNamespace(
        dag_id="muxly__j", run_id="r1", conf=conf or {}, data_interval_start=None, data_interval_end=None
    )
    return template_variables(run, WHEN)


def test_date_shorthands_and_jinja_render_together_in_action_params() -> None:
    params = {
        "q": "since ${YESTERDAY} until {{ DATE }} at ${TIMESTAMP}",
        "keep": "${UNKNOWN} ${ds} $DATE",
        "price": "${{ 5 }}",
        "brace": "{${DATE}}",
        "n": 3,
    }
    assert render_action_params(params, _variables()) == {
        "q": "since 2026-02-28 until 2026-03-01 at 20260301_060504",
        "keep": "${UNKNOWN} ${ds} $DATE",
        "price": "$5",
        "brace": "{2026-03-01}",
        "n": 3,
    }


def test_resolve_only_reads_the_shorthand() -> None:
    value = {"a": "{{ ds }} {% x %} ${DATE} {#", "b": ["{${DAY}}"]}
    assert resolve(value, date_variables(WHEN)) == {"a": "{{ ds }} {% x %} 2026-03-01 {#", "b": ["{01}"]}


def test_action_params_errors_name_field_and_position() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_action_params({"data_spec": {"query": "SELECT 1\n-- ${DATE}\nWHERE {{ ds + }}"}}, _variables())
    assert info.value.field == "action_params.data_spec.query"
    assert info.value.position == "line 3, column 7"
    assert "line 3, column 7" in str(info.value)
    with pytest.raises(TemplateRenderError) as info:
        render_action_params({"q": "a\nb\n{{ conn.x.password }}"}, _variables())
    assert info.value.position == "line 3" and "undefined" in str(info.value)


def test_url_placeholders_quote_and_name_the_missing_one() -> None:
    assert (
        fill_path_params("http://h/{a}/${DATE}/{{ DATE }}?x={b}", {"a": "x/y", "b": 2}, "c", {"DATE": "d"})
        == "http://h/x%2Fy/d/d?x=2"
    )
    assert fill_path_params("http://h/{{a}}/{a}", {"a": "v"}, "c") == "http://h//v"
    with pytest.raises(MuxlyConnectorError) as info:
        fill_path_params("http://h/{a}/\n{zz}", {"a": 1}, "conn1")
    message = str(info.value)
    assert "conn1" in message and "base_url" in message and "{zz}" in message and "line 2" in message


def test_api_connector_settings_are_templates() -> None:
    with LocalServer(lambda r: Reply(body=[{"id": 1}])) as server:
        ctx = ConnectorContext(
            id="t",
            name="T",
            connector_type="api",
            auth={"auth_type": "none"},
            settings={
                "base_url": server.url + "/{account}/{{ region | upper }}",
                "query_params": {"since": "${DATE}", "tag": "{{ DATE ~ '-' ~ region }}", "raw": "${other}"},
                "headers": {"X-Plain": "a{b}c"},
            },
        )
        data_spec = {
            "path_params": {"account": "a b"},
            "variables": {"DATE": "d1"},
            "run_params": {"region": "eu"},
        }
        list(ApiConnector(ctx, batch_size=10).fetch(data_spec))
        seen = server.requests[0]
    assert seen.path == "/a%20b/EU"
    assert seen.query == {"since": "d1", "tag": "d1-eu", "raw": "${other}"}
    assert seen.headers["X-Plain"] == "a{b}c"


def test_api_connector_template_errors_name_connector_and_field() -> None:
    ctx = ConnectorContext(
        id="bad",
        name="Bad",
        connector_type="api",
        auth={"auth_type": "none"},
        settings={"base_url": "http://127.0.0.1:9/x", "headers": {"X-A": "{{ 'x' * 200000000 }}"}},
    )
    with pytest.raises(MuxlyConnectorError) as info:
        list(ApiConnector(ctx, batch_size=10).fetch({}))
    assert "'bad'" in str(info.value) and "headers.X-A" in str(info.value)
    assert "template_max_bytes" in str(info.value)


RECORD = {
    "customer_name": "Ann",
    "total": {"amount": 12.5},
    "first name": "F",
    "user-agent": "ua",
    "items": [{"sku": "S1"}, {"sku": "S2"}],
    "flag": True,
    "none": None,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Order from {{customer_name}} for ${{ total.amount }}{{x}}!", "Order from Ann for $12.5!"),
        ("{{first name}}/{{ user-agent }}/{{$.items[1].sku}}/{{ items[0] }}", 'F/ua/S2/{"sku":"S1"}'),
        ("{{flag}} {{none}} {{ missing.deep }} {{ items }}", 'true   [{"sku":"S1"},{"sku":"S2"}]'),
        ("", ""),
    ],
)
def test_field_placeholders_render_alike_inline_and_through_jinja(template: str, expected: str) -> None:
    fast = compile_field_template(template)
    assert fast.parts is not None  # plain text and fields: no Jinja render per record
    assert fast.render(RECORD) == expected
    compiled(template, Shorthands(fields=True))
    assert FieldTemplate(template, None).render(RECORD) == expected  # the same template through Jinja


@settings(max_examples=80, deadline=None)
@given(
    keys=st.lists(st.sampled_from(["a", "b c", "d-e", "f.g", "h[0]", "$['i j']", "zz"]), max_size=4),
    values=st.lists(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers())),
        min_size=8,
        max_size=8,
    ),
)
def test_inline_parts_and_jinja_agree(keys: list[str], values: list[Any]) -> None:
    record = {"a": values[0], "b c": values[1], "d-e": values[2], "f": {"g": values[3]}, "h": [values[4]]}
    record["i j"] = values[5]
    template = "x" + "|".join("{{" + key + "}}" for key in keys) + "{"
    assert compile_field_template(template).render(record) == FieldTemplate(template, None).render(record)


def _format(template: str) -> list[TransformationSpec]:
    return [TransformationSpec("t1", "format_string", {"template": template, "output_field": "out"}, 0)]


def test_format_string_takes_jinja() -> None:
    template = (
        "{{ customer_name | upper }}{% for i in items %}-{{ i.sku }}{% endfor %} {{ flag }} {{ none }}|"
    )
    assert compile_field_template(template).parts is None
    assert compile_transformations(_format(template))(RECORD)[0]["out"] == "ANN-S1-S2 true |"
    rules = (
        RuleSpec(
            id="r", name="r", condition=None, destination_ids=("d",), transformations=tuple(_format(template))
        ),
    )
    router = Router([RouteSpec(id="route", name="r", rules=rules, error_handling=ErrorHandlingSpec())])
    assert [r["out"] for r in router.route_batch([RECORD])["d"]] == ["ANN-S1-S2 true |"]


def test_format_string_is_sandboxed_and_bounded() -> None:
    assert compile_transformations(_format("[{{ ''.__class__ }}]"))(RECORD)[0]["out"] in ("[]", "[None]")
    with pytest.raises(TransformStepError) as info:
        compile_transformations(_format("{{ 'x' * 200000000 }}"))(RECORD)
    assert "template_max_bytes" in str(info.value)
    with pytest.raises(TransformStepError) as info:
        compile_transformations(_format("{{ customer_name | int + [] }}"))(RECORD)
    assert "TypeError" in str(info.value) and "Ann" not in str(info.value)


def test_format_string_syntax_errors_name_the_row_field_and_position() -> None:
    with pytest.raises(MuxlyConfigError) as info:
        compile_transformations(_format("ok {{ a }}\nthen {{ a[ }}"))
    message = str(info.value)
    assert "t1" in message and "config.template" in message and "line 2, column 6" in message


def test_check_template_accepts_shorthands() -> None:
    check_template("{a} ${DATE}", shorthands=Shorthands(variables=frozenset({"DATE"}), placeholders="p"))
    with pytest.raises(TemplateRenderError) as info:
        check_template("{% if %}", field="config.url")
    assert info.value.field == "config.url" and info.value.position == "line 1"


def test_limits_apply_to_shorthand_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__TEMPLATE_MAX_BYTES", "100")
    shorthands = Shorthands(variables=frozenset({"v"}), jinja=False)
    with pytest.raises(TemplateLimitError):
        render("${v}${v}", {"v": "x" * 60}, shorthands=shorthands)


def test_destination_template_errors_name_the_destination_field_and_line() -> None:
    from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
    from muxly_provider.destinations.webhook import WebhookDestination

    run = RunInfo(dag_id="muxly__j", run_id="r", job_id="j", connector_id="c", logical_date=WHEN)
    config = {"url": "http://127.0.0.1:9/x", "headers": {"X-Order": "a\n{{ order.id.deep }}"}}
    destination = WebhookDestination(DestinationContext("hook", "Hook", "webhook", config), run)
    with pytest.raises(MuxlyDeliveryError) as info:
        destination.write_batch([{"order": None}])
    message = str(info.value)
    assert "'hook'" in message and "config.headers.X-Order" in message and "line 2" in message


def test_write_time_checks_cover_connector_settings_and_give_the_position() -> None:
    from muxly_provider.templating import template_problems

    row = {"connection_settings": {"base_url": "http://h/{a}/${DATE}", "headers": {"X-A": "a\n{{ b + }}"}}}
    problems = template_problems("connectors", row)
    assert [(p.field, p.position) for p in problems] == [
        ("connection_settings.headers.X-A", "line 2, column 1")
    ]
    assert problems[0].reason.endswith("at line 2, column 1")
