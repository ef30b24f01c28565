"""``POST /rules/test``: try several rules (stored, or unsaved definitions) on sample records.

Each rule is compiled by the router's own compilers (:func:`muxly_provider.routing.compile_condition` and
:func:`muxly_provider.routing.compile_transformations`) and tried on every record on its own: the answer says,
per record, which rules match, what each matching rule's steps make of it, and what failed. A rule that does not
compile (a malformed condition, an unknown step type or a bad step config) is reported once under ``rules`` with
the field and, for a condition, the 0-based position of the error, the reason being worded as
``POST /rules/test-condition`` words it; the other rules still run. ``join`` steps that read a connector are not
run here (the tester does no I/O): such a rule reports that error. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Id, StrictRequest, invalid
from muxly_provider.api.v1.rules import Records, TransformationRequest, rule_dict
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

router = APIRouter(prefix="/rules", tags=["rules"])


class RuleDefinitionRequest(StrictRequest):
    """An unsaved rule to try (its destinations do not matter here)."""

    id: Id | None = None
    name: str = Field(default="(unsaved rule)", min_length=1, max_length=500)
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000)
    condition: Annotated[str, Field(max_length=10_000)] | dict[str, Any] | None = None
    transformations: list[TransformationRequest] = Field(default_factory=list, max_length=200)


class RulesTestRequest(StrictRequest):
    """Records, and the rules to try on them: stored ones by id, unsaved ones, or both."""

    records: Records
    rule_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=200
    )
    rules: list[RuleDefinitionRequest] | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _some_rules(self) -> RulesTestRequest:
        if not self.rule_ids and not self.rules:
            raise ValueError("name the rules to try: 'rule_ids', 'rules' (unsaved definitions), or both")
        return self


class RuleProblem(BaseModel):
    """Why a rule or a step failed: the field of the rule (``condition``, ``transformations[2].config``...)."""

    field: str
    reason: str
    position: int | None = Field(default=None, description="0-based offset in the condition, for a condition")


class TestedRuleResponse(BaseModel):
    """A rule as tried: its id, whether it compiled, and what its stream steps flushed after the last record."""

    id: str
    name: str
    source: str = Field(description="'stored' or 'request' (rules[i])")
    error: RuleProblem | None
    flushed: list[dict[str, Any]] = Field(description="Records that aggregating steps emitted at the end")


class RecordErrorResponse(BaseModel):
    """A rule that failed on a record."""

    rule_id: str
    field: str
    reason: str


class RecordResultResponse(BaseModel):
    """What the rules did with one record."""

    index: int
    matched: list[str] = Field(description="Ids of the rules whose condition matches, in rule order")
    outputs: dict[str, list[dict[str, Any]]] = Field(description="Per matching rule, what its steps produced")
    errors: list[RecordErrorResponse]


class RulesTestResponse(BaseModel):
    """Per rule, whether it compiled; per record, the matches, outputs and errors."""

    rules: list[TestedRuleResponse]
    results: list[RecordResultResponse]


class _Compiled:
    """A rule of the request, compiled (or with the problem that stopped it)."""

    def __init__(self, rule_id: str, name: str, source: str, condition: Any, steps: tuple[Any, ...]) -> None:
        from muxly_provider.config.rules import condition_expression
        from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError
        from muxly_provider.routing import compile_condition, compile_transformations

        self.id, self.name, self.source, self.steps = rule_id, name, source, steps
        self.error: dict[str, Any] | None = None
        self.condition: Any = None
        self.pipeline: Any = None
        try:
            expression = condition_expression(condition)
            self.condition = compile_condition(expression)
        except MuxlyConditionError as exc:
            reason = f"a valid condition: {exc.message} at position {exc.position}"
            self.error = {"field": "condition", "reason": reason, "position": exc.position}
            return
        except ValueError as exc:
            self.error = {"field": "condition", "reason": str(exc)}
            return
        try:
            self.pipeline = compile_transformations(steps)
        except MuxlyConfigError as exc:
            self.error = {"field": self.step_field(exc.row_id, exc.field), "reason": exc.expected}
        except Exception as exc:  # a step factory refusing an odd config its own way: the rule's error
            self.error = {"field": "transformations", "reason": f"valid steps ({type(exc).__name__})"}

    def step_field(self, step_id: Any, field: str | None) -> str:
        """The request field of the step ``step_id`` (``transformations[i].<field>``)."""
        index = next((i for i, step in enumerate(self.steps) if step.id == step_id), None)
        prefix = "transformations" if index is None else f"transformations[{index}]"
        return f"{prefix}.{field}" if field else prefix


def _steps(
    transformations: Sequence[Mapping[str, Any] | TransformationRequest], rule_id: str
) -> tuple[Any, ...]:
    """The router's specs of a rule's steps (ids made up for unsaved steps)."""
    from muxly_provider.routing import TransformationSpec

    specs = []
    for index, raw in enumerate(transformations):
        step: dict[str, Any] = raw.model_dump() if isinstance(raw, TransformationRequest) else dict(raw)
        order = step.get("sequence_order")
        specs.append(
            TransformationSpec(
                id=str(step.get("id") or f"{rule_id}.step{index}"),
                transformation_type=str(step["transformation_type"]),
                config=step.get("config") or {},
                sequence_order=index if order is None else int(order),
            )
        )
    return tuple(specs)


def _compile_all(session: Session, body: RulesTestRequest) -> list[_Compiled]:
    rules: list[tuple[int, str, _Compiled]] = []
    for index, rule_id in enumerate(dict.fromkeys(body.rule_ids or [])):
        stored = crud.load_row(session, "routing_rules", rule_id)
        if stored is None:
            raise invalid(f"rule_ids[{index}]", f"the id of a rule (got {rule_id!r})")
        rule = rule_dict(session, stored)  # steps as GET shows them: secrets stay "***", as in /{id}/test
        compiled = _Compiled(
            rule_id, str(rule["name"]), "stored", rule["condition"], _steps(rule["transformations"], rule_id)
        )
        rules.append((int(rule["priority"]), rule_id, compiled))
    for index, definition in enumerate(body.rules or []):
        rule_id = definition.id or f"rules[{index}]"
        compiled = _Compiled(
            rule_id,
            definition.name,
            f"rules[{index}]",
            definition.condition,
            _steps(definition.transformations, rule_id),
        )
        rules.append((definition.priority, rule_id, compiled))
    return [compiled for _, _, compiled in sorted(rules, key=lambda r: (r[0], r[1]))]


def _try(rule: _Compiled, record: dict[str, Any], result: dict[str, Any]) -> None:
    from muxly_provider.routing import TransformStepError

    try:
        if not rule.condition(record):
            return
    except Exception as exc:  # a condition that raises on this record: the record's error, never a 500
        result["errors"].append({"rule_id": rule.id, "field": "condition", "reason": type(exc).__name__})
        return
    result["matched"].append(rule.id)
    if rule.pipeline is None or not len(rule.pipeline):
        result["outputs"][rule.id] = [dict(record)]
        return
    try:
        result["outputs"][rule.id] = rule.pipeline(dict(record))
    except TransformStepError as exc:
        field = rule.step_field(exc.step_id, None)
        result["errors"].append({"rule_id": rule.id, "field": field, "reason": exc.reason})
    except Exception as exc:  # never a 500 for one record: name the failure without its message
        result["errors"].append(
            {"rule_id": rule.id, "field": "transformations", "reason": type(exc).__name__}
        )


def _flush(rule: _Compiled) -> list[dict[str, Any]]:
    from muxly_provider.routing import TransformStepError

    if rule.pipeline is None or not rule.pipeline.streaming:
        return []
    try:
        return list(rule.pipeline.finish())
    except TransformStepError as exc:
        rule.error = {"field": rule.step_field(exc.step_id, None), "reason": exc.reason}
        return []
    except Exception as exc:  # as in _try: the rule's error, never a 500
        rule.error = {"field": "transformations", "reason": type(exc).__name__}
        return []


@router.post("/test", response_model=RulesTestResponse, summary="Try several rules on sample records")
def run_rules_test(
    body: RulesTestRequest, session: DbSession, _: Annotated[Principal, require("rules", "read")]
) -> dict[str, Any]:
    """Per record: the rules that match (in priority order), each one's transformed output, and the errors."""
    compiled = _compile_all(session, body)
    runnable = [rule for rule in compiled if rule.error is None]
    results = []
    for index, record in enumerate(body.records):
        result: dict[str, Any] = {"index": index, "matched": [], "outputs": {}, "errors": []}
        for rule in runnable:
            _try(rule, record, result)
        results.append(result)
    flushed = {rule.id: _flush(rule) for rule in runnable}
    return {
        "rules": [
            {
                "id": rule.id,
                "name": rule.name,
                "source": rule.source,
                "error": rule.error,
                "flushed": flushed.get(rule.id, []),
            }
            for rule in compiled
        ],
        "results": results,
    }
