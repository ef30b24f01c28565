"""A rule's transformations compiled into a :class:`Pipeline`: stream of records in, stream of records out.

``compile_transformations(steps, lookup_loader=None)`` checks every step's type and config once (an unknown type or a bad config
raises :class:`~muxly_provider.exceptions.MuxlyConfigError` naming ``rule_transformations``, the step id and the
key) and orders the steps by ``sequence_order``, then id. Calling the pipeline with one record returns the list of
records it produces: usually one, none when a ``filter`` dropped it (counted in :attr:`Pipeline.filtered`) or
while an ``aggregate`` holds it, several after an ``array_flatten``. :meth:`Pipeline.finish` flushes what
steps hold at the end of the stream.

A pipeline of one-record steps only is fused into one generated function (see
:mod:`muxly_provider.routing.pipeline_codegen`): the record is copied once and the steps work in place on that
copy. ``join`` steps reading another connector get their rows from ``lookup_loader`` (see
:mod:`muxly_provider.routing.transform_join`).

The input record is never modified; outputs are new top-level dicts that share unchanged nested values with the
input (copy-on-write), so everyone downstream treats records as read-only.

A step that fails for one record raises :class:`TransformStepError` (a
:class:`~muxly_provider.exceptions.MuxlyTransformError`) naming the step id, its type and the field involved,
never record values; the router decides what the failure means for the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from muxly_provider.exceptions import MuxlyConfigError, MuxlyTransformError
from muxly_provider.routing.formula import formula_step
from muxly_provider.routing.pipeline_codegen import CheckedApply, fuse
from muxly_provider.routing.route_specs import TransformationSpec
from muxly_provider.routing.transform_join import CompileContext, LookupLoader, join_step
from muxly_provider.routing.transform_steps import (
    MapStep,
    Record,
    Step,
    StepFactory,
    StepFailure,
    StreamStep,
    extract,
    filter_records,
    format_string,
    remove_field,
    rename_field,
    set_field,
)
from muxly_provider.routing.transform_stream import Aggregate, ArrayFlatten

__all__ = [
    "CONTEXT_FACTORIES",
    "FACTORIES",
    "Pipeline",
    "TransformStepError",
    "compile_transformations",
    "register_transformation",
    "transformation_types",
]

ContextStepFactory = Callable[[TransformationSpec, CompileContext], Step]
"""A factory that also needs the :class:`~muxly_provider.routing.transform_join.CompileContext`."""

FACTORIES: dict[str, StepFactory] = {
    "rename_field": rename_field,
    "set_field": set_field,
    "remove_field": remove_field,
    "filter": filter_records,
    "extract": extract,
    "format_string": format_string,
    "formula": formula_step,
    "array_flatten": ArrayFlatten,
    "aggregate": Aggregate,
}
"""The factory of every ``transformation_type`` that needs only its spec."""

CONTEXT_FACTORIES: dict[str, ContextStepFactory] = {"join": join_step}
"""The factories that also need the compile context (``join``: the lookup loader)."""


class TransformStepError(MuxlyTransformError):
    """A transformation step failed for one record.

    :param step_id: the ``rule_transformations`` id
    :param transformation_type: the step's type
    :param reason: what failed (field names only, no record values)
    """

    def __init__(self, step_id: str, transformation_type: str, reason: str) -> None:
        self.step_id = step_id
        self.transformation_type = transformation_type
        self.reason = reason
        super().__init__(f"transformation {step_id!r} ({transformation_type}) failed: {reason}")


def register_transformation(transformation_type: str, factory: StepFactory) -> None:
    """Add (or replace) the factory of a transformation type.

    :param transformation_type: the ``transformation_type`` value
    :param factory: spec -> :class:`~muxly_provider.routing.transform_steps.MapStep` or ``StreamStep``
    """
    CONTEXT_FACTORIES.pop(transformation_type, None)
    FACTORIES[transformation_type] = factory


def transformation_types() -> list[str]:
    """The known transformation types."""
    return sorted({*FACTORIES, *CONTEXT_FACTORIES})


def _wrap(spec: TransformationSpec, exc: Exception) -> TransformStepError:
    if isinstance(exc, StepFailure):
        return TransformStepError(spec.id, spec.transformation_type, exc.reason)
    # The exception's text may quote record values: only its type goes into the message.
    return TransformStepError(spec.id, spec.transformation_type, f"unexpected {type(exc).__name__}")


def _checked(spec: TransformationSpec, apply: Callable[[Record], Record | None]) -> CheckedApply:
    """``apply`` raising :class:`TransformStepError` for any failure."""

    def run(record: Record) -> Record | None:
        try:
            return apply(record)
        except MuxlyTransformError:
            raise
        except Exception as exc:
            raise _wrap(spec, exc) from exc

    return run


def _run_step(spec: TransformationSpec, step: Step, record: Record) -> Iterable[Record] | Record | None:
    try:
        if isinstance(step, MapStep):
            return step.apply(record)
        return list(step.process(record))
    except MuxlyTransformError:
        raise
    except Exception as exc:
        raise _wrap(spec, exc) from exc


class Pipeline:
    """Compiled steps of one rule (see the module docstring).

    :param steps: the specs and their compiled steps, in execution order
    """

    def __init__(self, steps: Sequence[tuple[TransformationSpec, Step]]) -> None:
        self.steps = tuple(steps)
        self.streaming = any(isinstance(step, StreamStep) for _, step in self.steps)
        self.filtered = 0
        self._maps = tuple((spec, step.apply) for spec, step in self.steps if isinstance(step, MapStep))
        self.fast_one: Callable[[Record], dict[str, Any] | None] = self.apply_one
        """Same as :meth:`apply_one`, fused into one generated function when there are no stream steps."""
        if not self.streaming:
            maps = [
                (spec, step, _checked(spec, step.apply))
                for spec, step in self.steps
                if isinstance(step, MapStep)
            ]
            self.fast_one = fuse(maps, self._drop)

    def _drop(self) -> None:
        self.filtered += 1

    def __len__(self) -> int:
        return len(self.steps)

    def apply_one(self, record: Record) -> dict[str, Any] | None:
        """The output of a pipeline without stream steps for ``record`` (``None``: filtered out).

        :raises TransformStepError: when a step fails for the record
        """
        if self.streaming:
            raise TypeError("apply_one() needs a pipeline without stream steps; call the pipeline instead")
        current: Record = record
        for spec, apply in self._maps:
            try:
                result = apply(current)
            except MuxlyTransformError:
                raise
            except Exception as exc:
                raise _wrap(spec, exc) from exc
            if result is None:
                self.filtered += 1
                return None
            current = result
        return dict(current) if current is record or type(current) is not dict else current

    def __call__(self, record: Record) -> list[dict[str, Any]]:
        """The records produced for ``record``.

        :raises TransformStepError: when a step fails for the record
        """
        if not self.streaming:
            out = self.fast_one(record)
            return [] if out is None else [out]
        return self._from(0, [record], record)

    def _from(self, start: int, records: list[Record], original: Record | None) -> list[dict[str, Any]]:
        for spec, step in self.steps[start:]:
            produced: list[Record] = []
            for rec in records:
                result = _run_step(spec, step, rec)
                if isinstance(step, MapStep):
                    if result is None:
                        self.filtered += 1
                    else:
                        produced.append(result)  # type: ignore[arg-type]
                else:
                    produced.extend(result)  # type: ignore[arg-type]
            records = produced
            if not records:
                return []
        return [dict(r) if r is original or type(r) is not dict else r for r in records]

    def finish(self) -> list[dict[str, Any]]:
        """Flush the stream steps (in order, each flush running through the steps after it).

        :raises TransformStepError: when a step fails while flushing
        """
        out: list[dict[str, Any]] = []
        for index, (spec, step) in enumerate(self.steps):
            if isinstance(step, StreamStep):
                try:
                    flushed = list(step.finish())
                except MuxlyTransformError:
                    raise
                except Exception as exc:
                    raise _wrap(spec, exc) from exc
                if flushed:
                    out.extend(self._from(index + 1, flushed, None))
        return out


def compile_transformations(
    steps: Sequence[TransformationSpec], *, lookup_loader: LookupLoader | None = None
) -> Pipeline:
    """Check and compile a rule's steps into a :class:`Pipeline` (ordered by ``sequence_order``, then id).

    :param steps: the rule's transformations, in any order
    :param lookup_loader: ``(connector_id, data_spec) -> rows`` for ``join`` steps with a
        ``join_connector_id``; called here, once per such step (wrap it with
        :func:`~muxly_provider.routing.transform_join.memoized_loader` to share rows between pipelines)
    :raises MuxlyConfigError: on an unknown ``transformation_type``, a bad ``config``, or a ``join`` on a
        connector without ``lookup_loader``
    """
    context = CompileContext(lookup_loader=lookup_loader)
    compiled: list[tuple[TransformationSpec, Step]] = []
    for spec in sorted(steps, key=lambda s: (s.sequence_order, s.id)):
        factory = FACTORIES.get(spec.transformation_type)
        with_context = CONTEXT_FACTORIES.get(spec.transformation_type)
        if factory is None and with_context is None:
            raise MuxlyConfigError(
                "rule_transformations",
                spec.id,
                "transformation_type",
                f"one of {', '.join(transformation_types())} (got {spec.transformation_type!r})",
            )
        if not isinstance(spec.config, Mapping):
            raise MuxlyConfigError("rule_transformations", spec.id, "config", "a JSON object")
        if factory is not None:
            compiled.append((spec, factory(spec)))
        else:
            assert with_context is not None
            compiled.append((spec, with_context(spec, context)))
    return Pipeline(compiled)
