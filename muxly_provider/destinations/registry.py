"""Destination types keyed by ``destination_type`` (modules are imported only when a type is used)."""

from __future__ import annotations

from importlib import import_module

from muxly_provider.destinations.base import MuxlyDestination
from muxly_provider.exceptions import MuxlyDestinationError

_BUILTIN: dict[str, str] = {
    "file": "muxly_provider.destinations.file:FileDestination",
    "database": "muxly_provider.destinations.database:DatabaseDestination",
    "webhook": "muxly_provider.destinations.webhook:WebhookDestination",
    "email": "muxly_provider.destinations.email:EmailDestination",
    "slack": "muxly_provider.destinations.slack:SlackDestination",
    "s3": "muxly_provider.destinations.s3:S3Destination",
    "prometheus": "muxly_provider.destinations.prometheus:PrometheusDestination",
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
    assert isinstance(cls, type)
    assert issubclass(cls, MuxlyDestination)
    return cls
