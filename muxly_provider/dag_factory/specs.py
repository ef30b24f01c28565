"""Turn job rows into plain, validated DAG specs, isolating every bad row as a :class:`JobProblem`.

A spec holds ids, names and numbers only (never a secret): the operators load the full configuration at run
time. Everything here is deterministic for unchanged rows (sorted, no clock, no network).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.config.schedule import check_schedule, check_timezone
from muxly_provider.connectors import registry as connector_registry
from muxly_provider.dag_factory.naming import dag_id_for
from muxly_provider.db.snapshot import ConfigSnapshot, Row
from muxly_provider.exceptions import MuxlyConfigError, MuxlyError

ACTIONS_NEEDING_ROUTES = frozenset({"sync", "pipeline"})


@dataclass(frozen=True)
class JobProblem:
    """Why a job row cannot become a DAG."""

    job_id: str
    dag_id: str
    field: str
    reason: str


@dataclass(frozen=True)
class JobDagSpec:
    """Everything the DAG builder needs about one job (ids and numbers, no secrets)."""

    job_id: str
    dag_id: str
    name: str
    job_type: str
    cron: str | None
    timezone: str
    connector_id: str
    connector_name: str
    connector_type: str
    action_type: str
    max_retries: int
    backoff_strategy: str
    timeout_seconds: int
    routes: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str, str], ...] = ()
    tags: tuple[str, ...] = field(default=())
    depends_on: str | None = None
    has_run_condition: bool = False
    notify_on_success: bool = False
    notify_on_failure: bool = False
    dead_letter_destinations: tuple[str, ...] = ()
    """Enabled dead-letter destinations of the job's routes (the DAG then has a ``dead_letters`` task)."""
    disabled_destinations: tuple[str, ...] = ()
    """Destinations the job reaches that are disabled: no task (records routed there are counted, skipped)."""
    wait_endpoint: str | None = None
    """``action_params.wait_for_webhook.endpoint_path``: the DAG starts with a ``wait_for_webhook`` sensor."""
    wait_condition: str | None = None
    wait_timeout_seconds: int = 0
    wait_on_timeout: str = "fail"
    wait_lookback_seconds: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for the last-good cache; tuples become lists)."""
        return dict(self.__dict__)  # the fields are flat values and tuples: no need for asdict's deep copy

    def digest(self) -> str:
        """A content hash of the spec (the DAG built from it is a function of it)."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobDagSpec:
        """Rebuild a spec written by :meth:`to_json`."""
        values = dict(data)
        values["routes"] = tuple(tuple(r) for r in values.get("routes", ()))
        values["destinations"] = tuple(tuple(d) for d in values.get("destinations", ()))
        values["tags"] = tuple(values.get("tags", ()))
        for key in ("dead_letter_destinations", "disabled_destinations"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


def _json(row: Row, column: str) -> Any:
    value = row.get(column)
    return json.loads(value) if isinstance(value, str) and value.strip() else (value or {})


@dataclass
class _Index:
    """The snapshot's rows keyed for lookups, built once per parse (parse stays linear in the rows)."""

    jobs: dict[str, Row]
    connectors: dict[str, Row]
    routes: dict[str, Row]
    destinations: dict[str, Row]
    rules_of_route: dict[str, list[str]]
    dests_of_rule: dict[str, list[str]]
    routes_of_connector: dict[str, list[str]]
    connector_errors: dict[str, MuxlyConfigError | None] = field(default_factory=dict)
    validate: bool = True
    known_rows: Set[str] = frozenset()
    """Digests of rows that passed validation before (:func:`row_digest`): not validated again."""
    passed_rows: set[str] = field(default_factory=set)
    """Digests of the rows that passed validation in this parse (or were known to)."""

    @classmethod
    def of(cls, snapshot: ConfigSnapshot) -> _Index:
        rules_of_route: dict[str, list[str]] = {}
        for link in snapshot.rows("route_rules"):
            rules_of_route.setdefault(link["route_id"], []).append(link["rule_id"])
        dests_of_rule: dict[str, list[str]] = {}
        for link in snapshot.rows("rule_destinations"):
            dests_of_rule.setdefault(link["rule_id"], []).append(link["destination_id"])
        routes_of_connector: dict[str, list[str]] = {}
        for route in snapshot.rows("routes"):
            if route["enabled"]:
                routes_of_connector.setdefault(route["connector_id"], []).append(route["id"])
        return cls(
            jobs=snapshot.by_id("scheduler_jobs"),
            connectors=snapshot.by_id("connectors"),
            routes=snapshot.by_id("routes"),
            destinations=snapshot.by_id("destinations"),
            rules_of_route=rules_of_route,
            dests_of_rule=dests_of_rule,
            routes_of_connector={k: sorted(v) for k, v in routes_of_connector.items()},
        )

    def destination(self, dest_id: str) -> tuple[str, str, str]:
        row = self.destinations[dest_id]
        return (dest_id, str(row["name"]), str(row["destination_type"]))

    def enabled(self, dest_id: str) -> bool:
        return self.destinations[dest_id].get("enabled") is not False

    def route_targets(
        self, route_ids: list[str]
    ) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...], tuple[str, ...]]:
        """The enabled destinations the routes deliver to (rules and defaults), their enabled dead-letter
        destinations, and the disabled ones (left out of the DAG)."""
        ids: set[str] = set()
        letters: set[str] = set()
        for route_id in route_ids:
            for rule_id in self.rules_of_route.get(route_id, []):
                ids.update(self.dests_of_rule.get(rule_id, []))
            handling = _json(self.routes[route_id], "error_handling") if route_id in self.routes else {}
            if not isinstance(handling, dict):
                continue
            if handling.get("default_destination_id"):
                ids.add(str(handling["default_destination_id"]))
            for key in ("dead_letter_destination_id", "error_destination_id"):
                if handling.get(key):
                    letters.add(str(handling[key]))
        known = {d for d in ids | letters if d in self.destinations}
        disabled = tuple(sorted(d for d in known if not self.enabled(d)))
        return (
            tuple(self.destination(d) for d in sorted(ids & known) if d not in disabled),
            tuple(sorted(d for d in letters & known if d not in disabled)),
            disabled,
        )

    def check_connector(self, connector: Row) -> None:
        """Validate a connector row once per parse, however many jobs use it."""
        cid = str(connector["id"])
        if not self.validate:
            return
        if cid not in self.connector_errors:
            try:
                self.check_row("connectors", connector)
                self.connector_errors[cid] = None
            except MuxlyConfigError as exc:
                self.connector_errors[cid] = exc
        error = self.connector_errors[cid]
        if error is not None:
            raise error

    def check_row(self, table: str, row: Row) -> None:
        """Validate ``row`` (pydantic) unless the same content passed before; remember that it passed."""
        digest = row_digest(table, row)
        if digest not in self.known_rows:
            _validate(table, row)
        self.passed_rows.add(digest)


def row_digest(table: str, row: Row) -> str:
    """A content hash of a row as the factory reads it (the columns of
    :data:`muxly_provider.db.snapshot.FACTORY_COLUMNS`).

    Validation is a function of the row alone, so a row with a digest that passed before passes again.
    """
    text = repr((table, sorted(row.items())))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _validate(table: str, row: Row) -> None:
    from muxly_provider.config.validation import validate_row

    validate_row(table, row)


def _spec_for(job: Row, index: _Index) -> JobDagSpec:
    job_id = str(job["id"])
    if index.validate:
        index.check_row("scheduler_jobs", job)
    params = _json(job, "action_params")
    connector = index.connectors.get(job["connector_id"])
    if connector is None:
        raise MuxlyConfigError(
            "scheduler_jobs", job_id, "connector_id", f"an existing connector, got {job['connector_id']!r}"
        )
    if not connector["enabled"]:
        raise MuxlyConfigError(
            "scheduler_jobs", job_id, "connector_id", f"an enabled connector; {connector['id']!r} is disabled"
        )
    index.check_connector(connector)
    connector_type = str(connector["connector_type"])
    try:
        actions = connector_registry.supported_actions(connector_type)
    except MuxlyError as exc:
        raise MuxlyConfigError("connectors", str(connector["id"]), "connector_type", str(exc)) from exc
    action = str(job["action_type"])
    if action not in actions:
        raise MuxlyConfigError(
            "scheduler_jobs",
            job_id,
            "action_type",
            f"an action the {connector_type!r} connector supports "
            f"({', '.join(sorted(actions))}), got {action!r}",
        )
    cron: str | None = None
    timezone = str(params.get("timezone") or "UTC")
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise MuxlyConfigError("scheduler_jobs", job_id, "action_params.timezone", str(exc)) from exc
    if job["job_type"] == "cron":
        try:
            cron = check_schedule(job.get("schedule"))
        except ValueError as exc:
            raise MuxlyConfigError("scheduler_jobs", job_id, "schedule", str(exc)) from exc
    depends_on = params.get("depends_on")
    if depends_on is not None:
        depends_on = str(depends_on)
        upstream = index.jobs.get(depends_on)
        if upstream is None or not upstream["enabled"] or depends_on == job_id:
            raise MuxlyConfigError(
                "scheduler_jobs",
                job_id,
                "action_params.depends_on",
                f"another enabled job, got {depends_on!r}",
            )
    notifications = params.get("notifications") or {}
    targets = {
        outcome: [
            str(item["destination_id"] if isinstance(item, Mapping) else item)
            for item in notifications.get(f"on_{outcome}") or []
        ]
        for outcome in ("success", "failure")
    }
    unknown = sorted({d for ids in targets.values() for d in ids if d not in index.destinations})
    if unknown:
        raise MuxlyConfigError(
            "scheduler_jobs",
            job_id,
            "action_params.notifications",
            f"existing destinations; unknown: {unknown}",
        )
    if action == "pipeline":
        route_ids = [str(params.get("route_id") or params.get("pipeline_id"))]
        if route_ids[0] not in index.routes:
            raise MuxlyConfigError(
                "scheduler_jobs", job_id, "action_params.route_id", f"an existing route, got {route_ids[0]!r}"
            )
    else:
        route_ids = list(index.routes_of_connector.get(str(connector["id"]), []))
    if action == "export":
        wanted = [str(d) for d in params.get("destination_ids") or []]
        missing = [d for d in wanted if d not in index.destinations]
        if missing:
            raise MuxlyConfigError(
                "scheduler_jobs",
                job_id,
                "action_params.destination_ids",
                f"existing destinations; unknown: {', '.join(missing)}",
            )
        destinations = tuple(index.destination(d) for d in sorted(set(wanted)) if index.enabled(d))
        dead_letter_ids: tuple[str, ...] = ()
        disabled = tuple(sorted(d for d in set(wanted) if not index.enabled(d)))
        route_ids = []
    else:
        destinations, dead_letter_ids, disabled = index.route_targets(route_ids)
    return JobDagSpec(
        job_id=job_id,
        dag_id=dag_id_for(job_id),
        name=str(job["name"]),
        job_type=str(job["job_type"]),
        cron=cron,
        timezone=timezone,
        connector_id=str(connector["id"]),
        connector_name=str(connector["name"]),
        connector_type=connector_type,
        action_type=action,
        max_retries=int(job["max_retries"]),
        backoff_strategy=str(job["backoff_strategy"]),
        timeout_seconds=int(job["timeout_seconds"]),
        routes=tuple((r, str(index.routes[r]["name"])) for r in route_ids),
        destinations=destinations,
        tags=("muxly", f"muxly:{connector['id']}"),
        depends_on=depends_on,
        has_run_condition=bool(params.get("run_condition")),
        notify_on_success=bool(targets["success"]),
        notify_on_failure=bool(targets["failure"]),
        dead_letter_destinations=dead_letter_ids,
        disabled_destinations=disabled,
        **_wait_fields(params),
    )


def _wait_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The spec fields of ``action_params.wait_for_webhook`` (already validated with the row)."""
    wait = params.get("wait_for_webhook")
    if not isinstance(wait, Mapping):
        return {}
    lookback = wait.get("lookback_seconds")
    return {
        "wait_endpoint": str(wait["endpoint_path"]),
        "wait_condition": str(wait["condition"]) if wait.get("condition") else None,
        "wait_timeout_seconds": int(wait.get("timeout_seconds") or 3600),
        "wait_on_timeout": str(wait.get("on_timeout") or "fail"),
        "wait_lookback_seconds": None if lookback is None else int(lookback),
    }


def build_job_specs(
    snapshot: ConfigSnapshot,
    wanted: Callable[[str], bool] | None = None,
    *,
    validate: bool = True,
    known_rows: Set[str] = frozenset(),
    passed_rows: set[str] | None = None,
) -> tuple[list[JobDagSpec], list[JobProblem]]:
    """Validate every enabled job row; return the good ones as specs and the bad ones as problems.

    Two jobs whose ids map to the same DAG id: the first (by id) wins, the other is a problem.

    :param snapshot: the rows (see :func:`muxly_provider.db.snapshot.load_factory_snapshot`)
    :param wanted: when given, only jobs whose id it accepts are validated and returned (a worker building one
        DAG, a shard building its share)
    :param validate: run the pydantic validation of the rows (the DAG processor does; a worker that re-parses to
        start a task skips it: the task validates the whole configuration when it runs, and importing every
        config model would cost more than the rest of that parse)
    :param known_rows: digests (:func:`row_digest`) of job and connector rows that passed validation in an
        earlier parse: rows with the same content are not validated again (a local shortcut: a row whose
        content changed is always validated)
    :param passed_rows: when given, receives the digests of the rows that passed validation in this parse
    """
    specs: list[JobDagSpec] = []
    problems: list[JobProblem] = []
    seen: dict[str, str] = {}
    index = _Index.of(snapshot)
    index.validate = validate
    index.known_rows = known_rows
    if passed_rows is not None:
        index.passed_rows = passed_rows
    for job in snapshot.rows("scheduler_jobs"):
        if not job["enabled"]:
            continue
        job_id = str(job["id"])
        dag_id = dag_id_for(job_id)
        if wanted is not None and not wanted(job_id):
            seen.setdefault(dag_id, job_id)
            continue
        if dag_id in seen:
            problems.append(
                JobProblem(
                    job_id, dag_id, "id", f"its DAG id {dag_id} is already used by job {seen[dag_id]!r}"
                )
            )
            continue
        try:
            spec = _spec_for(job, index)
        except MuxlyConfigError as exc:
            problems.append(JobProblem(job_id, dag_id, f"{exc.table}.{exc.field}", exc.expected))
            continue
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(JobProblem(job_id, dag_id, "row", f"{type(exc).__name__}: {exc}"))
            continue
        seen[dag_id] = job_id
        specs.append(spec)
    return specs, problems
