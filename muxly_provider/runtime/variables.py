"""Muxly's date variables (``${DATE}``, ``${YESTERDAY}``, ``${TIMESTAMP}``, ``${YEAR}``, ``${MONTH}``, ``${DAY}``).

Every string of ``action_params`` is a template of Muxly's one Jinja environment (:mod:`muxly_provider.templating`,
``docs/templates.md``) with the context of :func:`template_variables`; ``${DATE}`` and the other date
variables are shorthands of ``{{ DATE }}``, resolved against the run's logical date (or its start when it has
none). Unknown ``${NAME}`` placeholders are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

DATE_VARIABLES = frozenset({"DATE", "YESTERDAY", "TIMESTAMP", "YEAR", "MONTH", "DAY"})
"""The names of Muxly's date variables."""


def date_variables(when: datetime) -> dict[str, str]:
    """The values of the date variables for ``when``."""
    return {
        "DATE": when.strftime("%Y-%m-%d"),
        "YESTERDAY": (when - timedelta(days=1)).strftime("%Y-%m-%d"),
        "TIMESTAMP": when.strftime("%Y%m%d_%H%M%S"),
        "YEAR": when.strftime("%Y"),
        "MONTH": when.strftime("%m"),
        "DAY": when.strftime("%d"),
    }


def resolve(value: Any, variables: Mapping[str, Any], *, field: str | None = None) -> Any:
    """``value`` with every ``${NAME}`` of ``variables`` replaced, recursively through dicts and lists.

    Only the ``${NAME}`` shorthand is template syntax here (everything else is kept as written); it renders in
    Muxly's one template environment.

    :param field: the path of ``value``, named in errors
    """
    from muxly_provider.templating import Shorthands, render_value

    shorthands = Shorthands(variables=frozenset(variables), jinja=False)
    return render_value(value, variables, field=field, native=False, shorthands=shorthands)


TEMPLATE_VARIABLES = (
    "DATE",
    "YESTERDAY",
    "TIMESTAMP",
    "YEAR",
    "MONTH",
    "DAY",
    "ds",
    "ds_nodash",
    "ts",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "run_id",
    "dag_id",
    "params",
    "payload",
)
"""Every name a template of ``action_params`` can read (``docs/jobs.md``); nothing else is in its context."""


def _plain(value: Any) -> datetime | None:
    """A stdlib UTC datetime (Airflow hands pendulum objects; templates get the smaller type)."""
    if not isinstance(value, datetime):
        return None
    return datetime.fromtimestamp(value.timestamp(), UTC)


def template_variables(
    dag_run: Any, when: datetime, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The context of ``action_params`` templates for one run (:data:`TEMPLATE_VARIABLES`, nothing else).

    Airflow's ``conn``, ``var``, ``ti``, ``task``, ``macros`` and the ``dag_run`` object are deliberately left
    out: a job's author must not read Airflow's connections, variables or database through a template.

    :param dag_run: the run (``dag_id``, ``run_id``, ``conf``, ``data_interval_start``/``_end``)
    :param when: the run's logical date, or its start when it has none
    :param params: the DAG run's params (Airflow's ``params``)
    """
    moment = _plain(when) or when
    conf = getattr(dag_run, "conf", None)
    variables: dict[str, Any] = dict(date_variables(moment))
    variables.update(
        ds=moment.strftime("%Y-%m-%d"),
        ds_nodash=moment.strftime("%Y%m%d"),
        ts=moment.isoformat(),
        logical_date=moment,
        data_interval_start=_plain(getattr(dag_run, "data_interval_start", None)),
        data_interval_end=_plain(getattr(dag_run, "data_interval_end", None)),
        run_id=str(dag_run.run_id),
        dag_id=str(dag_run.dag_id),
        params={str(key): params[key] for key in params} if params else {},
        payload=conf.get("payload") if isinstance(conf, Mapping) else None,
    )
    return variables


def render_action_params(action_params: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """``action_params`` with every string rendered as a sandboxed Jinja template (strings stay strings), its
    ``${DATE}``-style shorthands included.

    :param variables: the context (:func:`template_variables`)
    :raises TemplateRenderError: naming the field (``action_params.data_spec.query``) and the position of what
        failed or passed ``[muxly] template_max_bytes``
    """
    from muxly_provider.templating import Shorthands, render_value

    shorthands = Shorthands(variables=DATE_VARIABLES)
    rendered = render_value(
        dict(action_params), variables, field="action_params", native=False, shorthands=shorthands
    )
    return dict(rendered)
