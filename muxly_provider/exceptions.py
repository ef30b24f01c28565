"""The one exception family of Muxly: every error Muxly raises on purpose derives from :class:`MuxlyError`."""

from __future__ import annotations


class MuxlyError(Exception):
    """Base of every error Muxly raises on purpose."""


class MuxlyConfigError(MuxlyError):
    """A row or a JSON column does not hold a valid configuration.

    :param table: the table of the row
    :param row_id: the id of the row (``None`` when it has none yet)
    :param field: the column or the dotted path inside a JSON column
    :param expected: what was expected there
    """

    def __init__(self, table: str, row_id: str | None, field: str, expected: str) -> None:
        self.table = table
        self.row_id = row_id
        self.field = field
        self.expected = expected
        super().__init__(f"{table} row {row_id!r}: field {field!r}: {expected}")

    def as_dict(self) -> dict[str, str | None]:
        """The error as a plain dict (for JSON answers and CLI tables)."""
        return {"table": self.table, "row_id": self.row_id, "field": self.field, "expected": self.expected}


class MuxlyConfigErrors(MuxlyError):
    """Several configuration errors found at once (an import validates everything before writing)."""

    def __init__(self, errors: list[MuxlyConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class MuxlyConditionError(MuxlyError):
    """A routing condition expression cannot be parsed.

    :param message: what is wrong
    :param expression: the whole expression
    :param position: the 0-based character offset of the error in ``expression``
    """

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.message = message
        self.expression = expression
        self.position = position
        super().__init__(f"{message} at position {position}")

    def caret(self) -> str:
        """The expression with a caret under the position of the error."""
        return f"{self.expression}\n{' ' * self.position}^"


class MuxlyTransformError(MuxlyError):
    """A transformation failed for one record (the router decides whether that stops the run)."""


class MuxlySecretError(MuxlyError):
    """A secret cannot be encrypted or decrypted (no or wrong Fernet key)."""


class MuxlyDatabaseError(MuxlyError):
    """Muxly's database is unreachable, not migrated, or misconfigured."""


class MuxlyDatabaseSettingError(MuxlyDatabaseError):
    """Muxly's database setting cannot work on this deployment (not an outage: waiting will not help).

    Raised when Airflow runs on a server database and ``[muxly] sql_alchemy_conn`` is unset (every machine would
    keep its own SQLite file), or when Muxly's SQLite URL names Airflow's own SQLite file. The message names the
    setting to change.
    """


class MuxlyConnectorError(MuxlyError):
    """A connector failed to fetch records; the message names the connector."""


class MuxlyDestinationError(MuxlyError):
    """A destination failed to write records; the message names the destination."""
