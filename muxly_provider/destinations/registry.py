"""Destination types keyed by ``destination_type``."""

from __future__ import annotations

from importlib import import_module

from muxly_provider.destinations.base import MuxlyDestination
from muxly_provider.exceptions import MuxlyDestinationError

_BUILTIN: dict[str, str] = {
    "file": "muxly_provider.destinations.file:FileDestination",
}


def builtin_types() -> frozenset[str]:
    """Destination types this version of Muxly can write to."""
    return frozenset(_BUILTIN)


def get_destination_class(destination_type: str) -> type[MuxlyDestination]:
    """The class implementing ``destination_type``.

    :raises MuxlyDestinationError: for an unknown type
    """
    target = _BUILTIN.get(destination_type)
    if target is None:
        raise MuxlyDestinationError(
            f"destination type {destination_type!r} is not supported; known: {', '.join(sorted(_BUILTIN))}"
        )
    module_name, _, attr = target.partition(":")
    cls = getattr(import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, MuxlyDestination)):
        raise TypeError(f"{target} is not a MuxlyDestination")
    return cls
