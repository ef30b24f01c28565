"""Where the credentials of an Airflow connection may be sent: the host that connection names.

A connector with ``auth_type: airflow_connection`` borrows a connection someone else may own (an operator can
name any ``conn_id``). Its credentials must therefore go only where the connection itself points, never to a
``base_url`` or ``api_base_url`` the connector's writer chose: every request of such a connector is checked
against the connection's origin before it is sent (pagination links included).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.secret_urls import origin


def _host(location: str) -> str:
    """The lower-case host name of a bare host (``db.internal``, ``db.internal:5432``, ``user@db.internal``)."""
    host = location.strip().strip("/").split("/", 1)[0].rsplit("@", 1)[-1]
    return host.split(":", 1)[0].lower()


@dataclass(frozen=True)
class CredentialScope:
    """The origin an Airflow connection's credentials are bound to.

    :param conn_id: the connection (named in errors)
    :param location: the connection's URL or host; empty when it names none (its credentials then go nowhere)
    :param host_suffix: instead of ``location``, any ``https`` host ending with this suffix (Google key files
        from a connection: their tokens are for Google's APIs only)
    """

    conn_id: str
    location: str = ""
    host_suffix: str = ""

    def allows(self, url: str) -> bool:
        """Whether ``url`` may receive the connection's credentials."""
        target = origin(url)
        if target is None:
            return False
        if self.host_suffix:
            host = urlsplit(url).hostname or ""
            return target.startswith("https://") and (
                host == self.host_suffix.lstrip(".") or host.endswith(self.host_suffix)
            )
        if not self.location:
            return False
        if "://" in self.location:
            return target == origin(self.location)
        # A bare host: any scheme and port of that host.
        return bool(_host(self.location)) and (urlsplit(url).hostname or "") == _host(self.location)

    def check(self, url: str, connector_id: str) -> None:
        """Refuse ``url`` unless it may receive the connection's credentials.

        :raises MuxlyConnectorError: naming the connector and the connection, never the URL's secrets
        """
        if not self.allows(url):
            where = (
                f"the host of Airflow connection {self.conn_id!r}"
                if self.location or self.host_suffix
                else "nowhere: the connection names no host"
            )
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: the credentials of Airflow connection {self.conn_id!r} may only be "
                f"sent to {where}; set base_url to a path under it (or leave api_base_url unset)"
            )
