"""An Airflow connection's credentials are bound to the host that connection names."""

from __future__ import annotations

import pytest

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.security.scope import CredentialScope


@pytest.mark.parametrize(
    ("location", "url", "allowed"),
    [
        ("http://api.internal", "http://api.internal/v1/orders?page=2", True),
        ("http://api.internal", "http://api.internal:80/v1", True),
        ("http://api.internal", "https://api.internal/v1", False),
        ("http://api.internal", "http://api.internal:8080/v1", False),
        ("http://api.internal", "http://evil.example/steal", False),
        ("http://api.internal", "http://api.internal.evil.example/", False),
        ("https://api.internal:8443/base", "https://api.internal:8443/other", True),
        ("db.internal", "https://db.internal/x", True),
        ("db.internal", "http://127.0.0.1:9/steal", False),
        ("", "http://127.0.0.1:9/steal", False),
        ("http://api.internal", "not a url", False),
    ],
)
def test_bound_to_the_connections_origin(location: str, url: str, allowed: bool) -> None:
    assert CredentialScope("c", location).allows(url) is allowed


def test_google_key_files_go_to_googleapis_only() -> None:
    scope = CredentialScope("gcp", host_suffix=".googleapis.com")
    assert scope.allows("https://bigquery.googleapis.com/bigquery/v2/projects/p/queries")
    assert not scope.allows("http://bigquery.googleapis.com/x")
    assert not scope.allows("https://googleapis.com.evil.example/x")
    assert not scope.allows("https://127.0.0.1:9/x")


def test_refusal_names_the_connection_not_the_url() -> None:
    with pytest.raises(MuxlyConnectorError, match="Airflow connection 'prod'") as failure:
        CredentialScope("prod", "http://api.internal").check("http://u:secret@evil.example/", "c1")
    assert "secret" not in str(failure.value)
