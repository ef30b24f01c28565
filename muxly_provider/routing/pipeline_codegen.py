"""Fuse a rule's one-record steps into one generated function: one copy of the record, steps done in place.

Step by step, each transformation copies the record it changes (copy-on-write). A rule with three steps would
copy every record three times; the fused function copies it once (``record = dict(input)``) and then runs each
step's in-place *fragment* (see :data:`~muxly_provider.routing.transform_steps.Fragment`) on that private
copy, or, for a step without a fragment, calls the step's ``apply``.

**User text never reaches the generated source**: it holds fixed templates and names returned by ``bind``;
keys, constants and helpers live in the function's namespace, whose ``__builtins__`` is empty.

If a fragment raises (a record of an unexpected shape, a per-record error), the step's ``apply`` runs on the
same, still unchanged record and either gives the answer or raises the precise
:class:`~muxly_provider.routing.transformations.TransformStepError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from muxly_provider.routing.route_specs import TransformationSpec
from muxly_provider.routing.transform_steps import MapStep, Record

FusedPipeline = Callable[[Record], "dict[str, Any] | None"]
"""record -> its transformed copy, or ``None`` when a step dropped it."""

CheckedApply = Callable[[Record], "Record | None"]


def fuse(
    steps: Sequence[tuple[TransformationSpec, MapStep, CheckedApply]],
    drop: Callable[[], None],
) -> FusedPipeline:
    """The fused function of ``steps`` (all :class:`MapStep`).

    :param steps: each step's spec, compiled step and ``apply`` wrapped to raise ``TransformStepError``
    :param drop: called when a step drops the record (the pipeline counts it as filtered); returns ``None``
    """
    namespace: dict[str, Any] = {"__builtins__": {}, "_Error": Exception, "_dict": dict, "_drop": drop}

    def bind(prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(namespace)}"
        namespace[name] = value
        return name

    lines = ["def _pipeline(_input):", "    record = _dict(_input)"]
    generic = False
    for _spec, step, checked in steps:
        apply = bind("apply", checked)
        fallback = [
            f"record = {apply}(record)",
            "if record is None:",
            "    return _drop()",
        ]
        if step.inline is None:
            generic = True
            lines.extend("    " + line for line in fallback)
            continue
        lines.append("    try:")
        lines.extend("        " + line for line in step.inline(bind))
        lines.append("    except _Error:")
        lines.extend("        " + line for line in fallback)
    if generic:
        # A step's apply may answer with another Mapping type; destinations get plain dicts.
        lines.extend(["    if record.__class__ is not _dict:", "        record = _dict(record)"])
    lines.append("    return record")
    source = "\n".join(lines) + "\n"
    # Safe: ``source`` holds only the templates above and names from ``bind`` (see the module docstring).
    exec(compile(source, "<muxly-pipeline>", "exec"), namespace)  # noqa: S102
    function: FusedPipeline = namespace["_pipeline"]
    return function
