"""One run of a job in three phases: route once and stage, deliver each share, send the dead letters on.

1. :func:`route_and_stage` (the ``extract`` task): the connector's records go through the job's routes exactly
   once (conditions, transformations, joins; or straight to ``destination_ids`` for ``export``), and each
   destination's share is staged apart (:mod:`muxly_provider.runtime.staging`). Records routed to a disabled
   destination are counted in ``skipped_disabled``; transformation failures of a route in ``dead_letter`` mode
   are staged as letters of its dead-letter destination.
2. :func:`deliver_share` (one ``deliver__<destination>`` task each): reads only its share and delivers it
   (:class:`~muxly_provider.runtime.delivery.Delivery`); what the destination still refuses after its retries
   is staged as letters when one of the destination's routes names a ``dead_letter_destination_id``, and goes
   to the ``dead_letters`` table otherwise.
3. :func:`deliver_dead_letters` (the ``dead_letters`` task, after every delivery finished, failed or not):
   sends every staged letter to its dead-letter destination; what that destination refuses goes to the
   ``dead_letters`` table.

:func:`run_job` runs the three phases in one process (the single ``run_job`` task): there is one routing code
path and one delivery code path. For every destination ``routed == delivered + dead_lettered + lost``;
``lost`` is non-zero only when the last-resort store failed as well.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from muxly_provider.connectors.registry import get_connector_class
from muxly_provider.destinations.base import Record, RunInfo
from muxly_provider.destinations.dead_letter import (
    DeadLetter,
    DeadLetterStore,
    TableDeadLetterStore,
    complete_letter,
    letter_records,
)
from muxly_provider.runtime import staging
from muxly_provider.runtime.delivery import (
    Delivery,
    DestinationOutcome,
    StagedLetterStore,
)
from muxly_provider.runtime.loading import JobRuntime
from muxly_provider.runtime.outcomes import RouteOutcome, RunOutcome

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DestinationOutcome",
    "RouteOutcome",
    "RunOutcome",
    "deliver_dead_letters",
    "deliver_share",
    "route_and_stage",
    "run_job",
]


def dead_letter_targets(runtime: JobRuntime) -> dict[str, str]:
    """Which dead-letter destination takes what each destination refuses: ``{destination: dead-letter dest}``.

    A destination reached through a route that names an enabled ``dead_letter_destination_id`` (any mode)
    dead-letters there; reached through several such routes, the first route by id decides.
    """
    targets: dict[str, str] = {}
    for route in sorted(runtime.routes, key=lambda r: r.id):
        handling = route.error_handling
        target = handling.dead_letter_destination_id
        if not target or target not in runtime.destinations:
            continue
        reached = {d for rule in route.rules for d in rule.destination_ids}
        if handling.default_destination_id:
            reached.add(handling.default_destination_id)
        for dest_id in sorted(reached - {target}):
            targets.setdefault(dest_id, target)
    return targets


def _regular_targets(runtime: JobRuntime) -> set[str]:
    ids = set(runtime.export_destination_ids)
    for route in runtime.routes:
        ids.update(d for rule in route.rules for d in rule.destination_ids)
        if route.error_handling.default_destination_id:
            ids.add(route.error_handling.default_destination_id)
    return ids


def route_batches(
    runtime: JobRuntime, batches: Iterable[list[Record]], outcome: RouteOutcome
) -> Iterator[Mapping[str, list[Record]]]:
    """THE routing code path: each batch of records routed once, as ``{destination id: records}``.

    ``export`` sends every record to each of ``destination_ids`` (same list object: never modify it).
    Counters (records in, router stats, time spent routing) accumulate in ``outcome``.
    """
    from muxly_provider.routing import Router
    from muxly_provider.runtime.loading import lookup_loader

    if runtime.action_type == "export":
        for batch in batches:
            outcome.records_in += len(batch)
            yield {dest_id: batch for dest_id in runtime.export_destination_ids}
        return
    router = Router(runtime.routes, lookup_loader=lookup_loader())
    clock = time.perf_counter
    for batch in batches:
        outcome.records_in += len(batch)
        started = clock()
        routed = router.route_batch(batch)
        outcome.route_seconds += clock() - started
        yield routed
    yield router.finish()
    outcome.router_stats = router.stats.as_dict()


def route_and_stage(
    runtime: JobRuntime,
    run: RunInfo,
    batches: Iterable[list[Record]],
    *,
    stage_letters: bool = True,
    letter_table: DeadLetterStore | None = None,
    observe: Callable[[str, list[Record]], None] | None = None,
) -> tuple[dict[str, Any], RouteOutcome]:
    """Route the records once and stage each destination's share; return the run manifest and the counts.

    :param runtime: the job's loaded configuration
    :param run: the run
    :param batches: the connector's records
    :param stage_letters: stage transformation failures for a ``dead_letters`` task (``False`` when the DAG
        has none: they go to the ``dead_letters`` table at once)
    :param letter_table: the last-resort store (default: Muxly's ``dead_letters`` table)
    :param observe: called with each destination's records as they are staged (OpenLineage's schemas)
    """
    folder = staging.run_folder(run)
    staging.reset(folder)  # a retried extract starts over
    staging.make_folder(folder)
    outcome = RouteOutcome()
    targets = dead_letter_targets(runtime) if stage_letters else {}
    regular = _regular_targets(runtime)
    disabled = runtime.disabled_destinations
    letter_only = {
        r.error_handling.dead_letter_destination_id
        for r in runtime.routes
        if r.error_handling.dead_letter_destination_id
    } - regular
    export = runtime.action_type == "export"
    shares = staging.ShareWriter(folder, "export" if export else "shares")
    letters = staging.ShareWriter(folder, "letters")
    table: DeadLetterStore | None = letter_table
    table_batches = 0
    for routed in route_batches(runtime, batches, outcome):
        if export:
            first = next(iter(routed.values()), None)
            if first:
                shares.add("export", first)
            for dest_id, records in routed.items():
                counts = outcome.skipped_disabled if dest_id in disabled else outcome.routed
                counts[dest_id] = counts.get(dest_id, 0) + len(records)
            continue
        for dest_id, records in routed.items():
            if not records:
                continue
            if dest_id in letter_only:
                outcome.transform_letters += len(records)
                records = [complete_letter(letter, run) for letter in records]
                if stage_letters and dest_id not in disabled:
                    letters.add(dest_id, records)
                    continue
                table = table or TableDeadLetterStore(run)
                reason = "disabled" if dest_id in disabled else "not run in this DAG shape"
                table.put(
                    DeadLetter(
                        destination_id=dest_id,
                        batch_index=table_batches,
                        records=records,
                        error=f"dead-letter destination {dest_id!r} is {reason}: letters kept here",
                    )
                )
                table_batches += 1
            elif dest_id in disabled:
                outcome.skipped_disabled[dest_id] = outcome.skipped_disabled.get(dest_id, 0) + len(records)
            else:
                outcome.routed[dest_id] = outcome.routed.get(dest_id, 0) + len(records)
                shares.add(dest_id, records)
                if observe is not None:
                    observe(dest_id, records)
    for dest_id, count in sorted(outcome.skipped_disabled.items()):
        log.warning("Muxly: %d records routed to disabled destination %s were skipped", count, dest_id)
    staged = shares.close()
    share_of = {d: staged["export"] for d in runtime.export_destination_ids} if export and staged else staged
    for dest_id in (
        regular - disabled
    ):  # every destination gets its delivery (and commit), with or without records
        share_of.setdefault(dest_id, {"path": None, "batches": 0, "records": 0})
        outcome.routed.setdefault(dest_id, 0)
    manifest: dict[str, Any] = {
        "uri": staging.uri_of(folder),
        "records_in": outcome.records_in,
        "shares": {d: m for d, m in sorted(share_of.items()) if d not in disabled},
        "letters": letters.close(),
        "dead_letter_targets": targets,
    }
    return manifest, outcome


def deliver_share(
    runtime: JobRuntime,
    run: RunInfo,
    manifest: Mapping[str, Any],
    dest_id: str,
    table: DeadLetterStore | None = None,
    *,
    stage_letters: bool = True,
) -> DestinationOutcome:
    """Deliver one destination's staged share; record the try's result for the ``dead_letters`` task.

    :param manifest: the run manifest of :func:`route_and_stage`
    :param dest_id: the destination
    :param table: the last-resort store (default: Muxly's ``dead_letters`` table)
    :param stage_letters: stage failed batches for the ``dead_letters`` task when the destination has a
        dead-letter destination (``False`` when the DAG has no such task: they go to ``table``)
    """
    uri = str(manifest["uri"])
    target = manifest.get("dead_letter_targets", {}).get(dest_id) if stage_letters else None
    result = staging.result_path(uri, dest_id)
    staging.remove_file(result)
    staging.reset(staging.failed_folder(uri, dest_id))
    store: DeadLetterStore = (
        StagedLetterStore(uri, run, target) if target else (table or TableDeadLetterStore(run))
    )
    context: Any = runtime.destinations.get(dest_id)
    if context is None:
        context = "destination is disabled" if dest_id in runtime.disabled_destinations else "unknown"
    share = manifest["shares"].get(dest_id)
    counts = _deliver_all(
        Delivery({dest_id: context}, run, store), dest_id, staging.read_share(uri, share) if share else ()
    )
    staging.write_json(
        result,
        {"counts": counts.as_dict(), "failed_batches": sorted(counts.failed_batches), "letters_to": target},
    )
    return counts


def deliver_dead_letters(
    runtime: JobRuntime, run: RunInfo, manifest: Mapping[str, Any], table: DeadLetterStore | None = None
) -> tuple[dict[str, DestinationOutcome], dict[str, DestinationOutcome]]:
    """Send every staged letter of the run to its dead-letter destination.

    A destination whose delivery task left no result (killed, timed out, or it failed before delivering)
    has its whole share dead-lettered, with that reason: nothing routed is lost.

    :returns: the counts of the dead-letter destinations, and of destinations whose result was missing
    """
    uri = str(manifest["uri"])
    targets: Mapping[str, str] = manifest.get("dead_letter_targets", {})
    letter_shares: Mapping[str, Any] = manifest.get("letters", {})
    dead_letter_ids = sorted(set(targets.values()) | set(letter_shares))
    unfinished: dict[str, DestinationOutcome] = {}
    outcomes: dict[str, DestinationOutcome] = {}
    for target in dead_letter_ids:
        context: Any = runtime.destinations.get(target)
        if context is None:
            context = "dead-letter destination is not available"
        # A dead-letter destination that also has a share of its own writes its letters under another run
        # key, so that its letters and its share never overwrite each other (files, S3 keys).
        own_run = replace(run, run_id=f"{run.run_id}.dead_letters") if target in manifest["shares"] else run
        delivery = Delivery({target: context}, own_run, table or TableDeadLetterStore(run))
        batches = itertools.chain(
            staging.read_share(uri, letter_shares[target]) if target in letter_shares else (),
            *(
                _letters_of(run, manifest, dest_id, unfinished)
                for dest_id in sorted(d for d, t in targets.items() if t == target)
            ),
        )
        outcomes[target] = _deliver_all(delivery, target, batches)
    return outcomes, unfinished


def _deliver_all(delivery: Delivery, dest_id: str, batches: Iterable[list[Record]]) -> DestinationOutcome:
    """Send ``batches`` to ``dest_id`` and commit; abort the delivery (and re-raise) on any error."""
    try:
        for batch in batches:
            delivery.send({dest_id: batch})
        delivery.flush()
        delivery.commit()
    except BaseException:
        delivery.abort()
        raise
    return delivery.outcomes[dest_id]


def _letters_of(
    run: RunInfo,
    manifest: Mapping[str, Any],
    dest_id: str,
    unfinished: dict[str, DestinationOutcome],
) -> Iterator[list[Record]]:
    uri = str(manifest["uri"])
    share = manifest["shares"].get(dest_id)
    if share is None:
        return
    result = staging.read_json(staging.result_path(uri, dest_id))
    if result is not None:
        folder = staging.failed_folder(uri, dest_id)
        for index in result["failed_batches"]:
            yield staging.read_batch(folder, int(index))
        return
    error = f"destination {dest_id!r}: its delivery task did not finish (killed, timed out or failed early)"
    log.error("Muxly: %s; its %d staged records go to the dead-letter destination", error, share["records"])
    unfinished[dest_id] = DestinationOutcome(
        routed=int(share["records"]), dead_lettered=int(share["records"]), error=error
    )
    for index, batch in enumerate(staging.read_share(uri, share)):
        yield letter_records(DeadLetter(dest_id, index, batch, error), run)


def run_job(
    runtime: JobRuntime,
    run: RunInfo,
    data_spec: Mapping[str, Any],
    batch_size: int = DEFAULT_BATCH_SIZE,
    dead_letters: DeadLetterStore | None = None,
    *,
    batches: Iterable[list[Record]] | None = None,
    observe: Callable[[str, list[Record]], None] | None = None,
) -> RunOutcome:
    """Run the whole job in this process: the three phases of the module docstring, then clean up.

    A failed destination does not raise here: it shows in ``outcome.failed_destinations`` after the others
    were delivered, and the caller decides (the operator fails the task so that Airflow retries it).

    :param runtime: the job's loaded configuration
    :param run: the run
    :param data_spec: the connector's ``data_spec`` for this run
    :param batch_size: records fetched from the connector at once
    :param dead_letters: the last-resort store (default: Muxly's ``dead_letters`` table)
    :param batches: records already fetched instead of the connector's
    :param observe: see :func:`route_and_stage`
    """
    started = time.monotonic()
    outcome = RunOutcome()
    table = dead_letters or TableDeadLetterStore(run)
    outcome.dead_letter_store = table.name
    connector = None
    if batches is None:
        connector = get_connector_class(runtime.connector.connector_type)(
            runtime.connector, batch_size=batch_size
        )
        batches = connector.fetch(data_spec)
    try:
        manifest, outcome.route = route_and_stage(runtime, run, batches, letter_table=table, observe=observe)
    finally:
        if connector is not None:
            connector.close()
    outcome.records_in = outcome.route.records_in
    for dest_id in manifest["shares"]:
        outcome.destinations[dest_id] = deliver_share(runtime, run, manifest, dest_id, table)
    letters, unfinished = deliver_dead_letters(runtime, run, manifest, table)
    outcome.dead_letter_destinations = letters
    outcome.destinations.update(unfinished)
    if not outcome.failed_destinations:
        staging.cleanup(str(manifest["uri"]))
    outcome.duration_seconds = time.monotonic() - started
    return outcome
