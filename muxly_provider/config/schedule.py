"""Muxly's one schedule validator: cron expressions, presets and timezones, checked as Airflow's timetable does.

:func:`check_schedule` and :func:`check_timezone` are the only schedule and timezone checks: the API, the CLI
and the import call them (through :mod:`muxly_provider.config.validation`) and the DAG factory calls them at
parse (:mod:`muxly_provider.dag_factory.specs`), so a schedule accepted on write never drops a DAG at parse,
with the same message everywhere.

They use the libraries Airflow's ``CronTriggerTimetable`` uses: ``croniter`` parses the expression (Airflow's
``CronMixin.validate`` constructs a ``croniter``) and ``pendulum.timezone`` resolves the timezone (Airflow's
``parse_timezone``). Both are plain libraries (dependencies of Airflow), not Airflow, so
:mod:`muxly_provider.config` stays free of Airflow and SQLAlchemy imports. This module imports no pydantic
either (a worker's parse imports it), and the two libraries are imported on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

CRON_PRESETS: Mapping[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
"""Schedule presets (case-insensitive) and the five-field expression each one stands for (cron's meaning)."""


@functools.lru_cache(maxsize=4096)
def check_schedule(schedule: str | None) -> str:
    """Check a schedule and return its five-field cron form (what the DAG's ``CronTriggerTimetable`` gets).

    A schedule is a preset of :data:`CRON_PRESETS` or five cron fields (minute hour day-of-month month
    day-of-week) that ``croniter`` accepts, the check Airflow's timetable applies.

    :param schedule: the ``scheduler_jobs.schedule`` value
    :returns: the five-field expression
    :raises ValueError: whose message says what was expected (the same text on write and at parse)
    """
    from croniter import CroniterError, croniter

    text = (schedule or "").strip()
    if not text:
        raise ValueError("a cron expression or preset: a cron job needs a schedule")
    if text.startswith("@"):
        preset = CRON_PRESETS.get(text.lower())
        if preset is None:
            raise ValueError(f"a preset among {', '.join(CRON_PRESETS)}; got {text!r}")
        return preset
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            "a five-field cron expression (minute hour day-of-month month day-of-week) or a preset such as "
            f"@daily; got {len(fields)} field(s) in {text!r}"
        )
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"a valid cron expression; {text!r} is not ({exc})") from None
    return " ".join(fields)


@functools.lru_cache(maxsize=512)
def check_timezone(name: str) -> str:
    """Check a timezone name the way Airflow resolves a timetable's timezone (``pendulum.timezone``).

    :param name: an IANA name such as ``Europe/Paris`` (or ``UTC``)
    :returns: the name
    :raises ValueError: naming what was expected
    """
    import pendulum

    try:
        pendulum.timezone(name)
    except (ValueError, OSError) as exc:  # InvalidTimezone is a ValueError; odd paths raise OSError
        raise ValueError(f"an IANA timezone name such as 'Europe/Paris'; got {name!r}") from exc
    return name
