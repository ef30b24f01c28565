"""Muxly's routing: the condition language, transformations and the router. Pure: no I/O, no Airflow.

* :func:`compile_condition` / :func:`parse_condition`: the condition language (``docs/conditions.md``);
* :func:`compile_transformations`: a rule's steps as a :class:`Pipeline` (``join`` rows of a connector come
  from a :data:`LookupLoader` given by the runtime);
* :class:`Router`: routes records through routes' rules to destinations (``docs/routing.md``).
"""

from __future__ import annotations

from muxly_provider.routing.conditions import compile_condition, parse_condition
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec, TransformationSpec
from muxly_provider.routing.router import Router, RouterStats
from muxly_provider.routing.transform_join import LookupLoader
from muxly_provider.routing.transformations import (
    Pipeline,
    TransformStepError,
    compile_transformations,
    register_transformation,
)

__all__ = [
    "ErrorHandlingSpec",
    "LookupLoader",
    "Pipeline",
    "RouteSpec",
    "Router",
    "RouterStats",
    "RuleSpec",
    "TransformStepError",
    "TransformationSpec",
    "compile_condition",
    "compile_transformations",
    "parse_condition",
    "register_transformation",
]
