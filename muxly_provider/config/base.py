"""Base classes shared by every model of Muxly's JSON columns.

Unknown keys are rejected everywhere a closed list of options is documented (SPEC §2 and REFERENCE.md), so a
typo such as ``base_ulr`` is reported at write time instead of being silently ignored at run time. Free-form
maps (``headers``, ``query_params``, ``column_mapping``, ...) are plain ``dict`` fields, and ``plugin:<name>``
connectors take any object.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class StrictConfig(BaseModel):
    """A JSON object with a closed set of keys (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)


NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
"""A string that is not empty."""

PositiveInt = Annotated[int, Field(gt=0)]
"""An integer greater than 0."""

PositiveFloat = Annotated[float, Field(gt=0)]
"""A number greater than 0."""

NonNegativeInt = Annotated[int, Field(ge=0)]
"""An integer greater than or equal to 0."""

_SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|private_key|credential|auth_code|connection_string|webhook_url"
    r"|service_account_json|authorization|dsn|^headers$|^query_params$)",
    re.IGNORECASE,
)
NON_SECRET_NAMES: frozenset[str] = frozenset(
    {
        "token_url",
        "client_id",
        "conn_id",
        "username",
        "smtp_username",
        "location",
        "header_name",
        "param_name",
        "access_key_id",
        "auth_type",
        "secret_name",
    }
)
"""Option names that look like secrets but are not (identifiers and locations)."""


def is_secret_name(name: str) -> bool:
    """Whether an option called ``name`` holds a secret (``password``, ``*_token``, ``api_key``, ...).

    ``headers`` and ``query_params`` count too: any of their values may carry a credential (``Cookie``,
    ``X-Auth``, ``apikey``), so every value below them is a secret.

    :param name: a key of a JSON object
    """
    return name not in NON_SECRET_NAMES and _SECRET_NAME.search(name) is not None
