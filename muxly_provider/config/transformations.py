"""``rule_transformations.config`` per ``transformation_type`` (the ten types of the original Muxly docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from muxly_provider.config.base import NonEmptyStr, StrictConfig


class RenameFieldConfig(StrictConfig):
    """``rename_field``: ``{"from": "purchase_amount", "to": "revenue"}``."""

    from_: NonEmptyStr = Field(alias="from")
    to: NonEmptyStr


class SetFieldConfig(StrictConfig):
    """``set_field``: sets ``field`` to a constant ``value`` (any JSON value)."""

    field: NonEmptyStr
    value: Any = None


class RemoveFieldConfig(StrictConfig):
    """``remove_field``: drops ``field``."""

    field: NonEmptyStr


FilterOperator = Literal[
    ">", "<", ">=", "<=", "=", "==", "!=", "contains", "not_contains", "starts_with", "ends_with"
]


class FilterConfig(StrictConfig):
    """``filter``: keeps the record only when ``field operator value`` holds (``==`` is accepted for ``=``)."""

    field: NonEmptyStr
    operator: FilterOperator
    value: Any = None


class FormulaConfig(StrictConfig):
    """``formula``: ``output_field`` = arithmetic over fields, e.g. ``price * discount_rate``.

    The formula is parsed and compiled when the row is validated, so a malformed one is refused at write time
    with the position of the error (``muxly_provider.routing`` is pure: no Airflow, no database).
    """

    output_field: NonEmptyStr
    formula: NonEmptyStr

    @field_validator("formula")
    @classmethod
    def _compiles(cls, text: str) -> str:
        from muxly_provider.routing.formula import compile_formula
        from muxly_provider.routing.formula_parser import FormulaSyntaxError

        try:
            compile_formula(text)
        except FormulaSyntaxError as exc:
            raise ValueError(f"a valid formula: {exc.message} at position {exc.position}") from None
        return text


class FormatStringConfig(StrictConfig):
    """``format_string``: ``output_field`` = ``template`` with ``{{field}}`` placeholders filled."""

    template: str
    output_field: NonEmptyStr


class ExtractConfig(StrictConfig):
    """``extract``: keeps only ``fields`` (dot paths)."""

    fields: list[NonEmptyStr] = Field(min_length=1)


class ArrayFlattenConfig(StrictConfig):
    """``array_flatten``: one record per element of ``array_field``, lifting ``flatten_fields``."""

    array_field: NonEmptyStr
    flatten_fields: list[NonEmptyStr] = Field(default_factory=list)
    preserve_parent: bool = True


class JoinConfig(StrictConfig):
    """``join``: enriches records with another connector's records (or an inline ``lookup`` list)."""

    join_connector_id: NonEmptyStr | None = None
    join_data_spec: dict[str, Any] = Field(default_factory=dict)
    lookup: list[dict[str, Any]] | None = None
    left_key: NonEmptyStr
    right_key: NonEmptyStr
    join_type: Literal["left", "inner", "right"] = "left"
    prefix_fields: bool = False
    prefix: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> JoinConfig:
        if (self.join_connector_id is None) == (self.lookup is None):
            raise ValueError("exactly one of 'join_connector_id' or 'lookup' (inline records)")
        return self


class AggregationConfig(StrictConfig):
    """One aggregate: ``function`` of ``field`` (``*`` for count) written as ``as``."""

    function: Literal["sum", "count", "avg", "min", "max"]
    field: NonEmptyStr = "*"
    as_: NonEmptyStr | None = Field(default=None, alias="as")


class AggregateConfig(StrictConfig):
    """``aggregate``: one record per ``group_by`` combination with its ``aggregations``."""

    group_by: list[NonEmptyStr] = Field(default_factory=list)
    aggregations: list[AggregationConfig] = Field(min_length=1)


TransformationConfig = (
    RenameFieldConfig
    | SetFieldConfig
    | RemoveFieldConfig
    | FilterConfig
    | FormulaConfig
    | FormatStringConfig
    | ExtractConfig
    | ArrayFlattenConfig
    | JoinConfig
    | AggregateConfig
)
"""``rule_transformations.config`` of any type (the row's ``transformation_type`` selects the model)."""

TRANSFORMATION_MODELS: dict[str, type[StrictConfig]] = {
    "rename_field": RenameFieldConfig,
    "set_field": SetFieldConfig,
    "remove_field": RemoveFieldConfig,
    "filter": FilterConfig,
    "formula": FormulaConfig,
    "format_string": FormatStringConfig,
    "extract": ExtractConfig,
    "array_flatten": ArrayFlattenConfig,
    "join": JoinConfig,
    "aggregate": AggregateConfig,
}
"""The ``config`` model of each ``transformation_type``."""
