"""What the confinement checks report: a :class:`Problem` per field, raised as :class:`MuxlyConfinementError`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from muxly_provider.exceptions import MuxlyError

ProblemKind = Literal["path", "database", "connection", "credentials"]


@dataclass(frozen=True)
class Problem:
    """One refused value.

    :param field: the column plus dotted path of the value (``config.output_dir``)
    :param reason: what is expected instead (never the value itself when it may hold a secret)
    :param kind: ``path``, ``database`` and ``connection`` (a ``conn_id`` ``[muxly] allowed_conn_ids`` does
        not allow) are invalid values (``422``), ``credentials`` a missing permission (``403``)
    """

    field: str
    reason: str
    kind: ProblemKind


class MuxlyConfinementError(MuxlyError):
    """A path or database outside what Muxly may touch.

    :param field: the setting that names it (``path``, ``output_dir``, ``connection_string``, ...)
    :param reason: why it is refused
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
