"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept free of imports: Airflow calls it on every ``airflow`` command.
"""

from __future__ import annotations

from typing import Any


def _option(
    description: str,
    default: str | None,
    example: str | None = None,
    *,
    kind: str = "string",
    sensitive: bool = False,
) -> dict[str, Any]:
    option: dict[str, Any] = {
        "description": description,
        "version_added": "0.1.0",
        "type": kind,
        "example": example,
        "default": default,
    }
    if sensitive:
        option["sensitive"] = True
    return option


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (name, config section, DB manager, CLI)."""
    return {
        "package-name": "airflow-provider-muxly",
        "name": "Muxly",
        "description": "Config-driven data pipelines: connectors, routing rules, destinations and jobs as rows.",
        "versions": ["0.1.0"],
        "db-managers": ["muxly_provider.db.manager.MuxlyDBManager"],
        "connection-types": [
            {
                "connection-type": "muxly",
                "hook-class-name": "muxly_provider.hooks.connector.MuxlyConnectorHook",
                "hook-name": "Muxly connector",
            }
        ],
        "cli": ["muxly_provider.cli.definition.get_muxly_cli_commands"],
        "config": {
            "muxly": {
                "description": "Settings of the Muxly provider.",
                "options": {
                    "sql_alchemy_conn": _option(
                        "SQLAlchemy URL of Muxly's database (its own connection: Airflow hides its metadata "
                        "URL from workers). Empty means a SQLite file muxly.db in AIRFLOW_HOME, allowed only "
                        "while Airflow itself runs on SQLite with a local executor (else Muxly refuses to start "
                        "and names this setting). It may name the same PostgreSQL database as Airflow's; the "
                        "tables then live in the schema db_schema.",
                        "",
                        "postgresql+psycopg2://airflow:airflow@postgres/airflow",
                        sensitive=True,
                    ),
                    "db_schema": _option(
                        "PostgreSQL schema that holds Muxly's tables (ignored on SQLite).", "muxly", "muxly"
                    ),
                    "db_connect_timeout": _option(
                        "Seconds to wait for a connection to Muxly's database.", "10", "5", kind="integer"
                    ),
                    "db_statement_timeout": _option(
                        "Seconds one statement on Muxly's database may run (0: no limit). Migrations are not "
                        "bounded.",
                        "60",
                        "30",
                        kind="integer",
                    ),
                    "listener_timeout_seconds": _option(
                        "Longest time the run listener holds the scheduler for one write to job_executions; "
                        "slower writes finish in the background, missed ones are filled in by "
                        "'airflow muxly executions reconcile'.",
                        "2",
                        "1",
                        kind="float",
                    ),
                    "machine_role": _option(
                        "The name this machine records with its settings for 'airflow muxly doctor' "
                        "(for example scheduler, worker); empty means the host name alone.",
                        "",
                        "worker",
                    ),
                    "staging_path": _option(
                        "Where extract tasks stage records (a local folder or an object-storage URL such as "
                        "s3://bucket/muxly). Empty means AIRFLOW_HOME/muxly/staging.",
                        "",
                        "s3://my-bucket/muxly/staging",
                    ),
                    "staging_conn_id": _option(
                        "Airflow connection of an object-storage staging_path (for example an aws connection "
                        "whose extra holds endpoint_url for an S3-compatible store); needs the s3 extra.",
                        "",
                        "muxly_staging",
                    ),
                    "files_root": _option(
                        "The only local folder connectors and destinations may use: relative paths resolve "
                        "against it and every local path must resolve (links followed) inside it. "
                        "Empty means AIRFLOW_HOME/muxly/files.",
                        "",
                        "/data/muxly",
                    ),
                    "dag_file_shards": _option(
                        "How many DAG files share the jobs. Above 1, write the shard files with "
                        "'airflow muxly jobs write-shards --folder DAGS_FOLDER'; each builds the jobs whose "
                        "stable hash falls in its shard, so no file nears Airflow's parse timeouts.",
                        "1",
                        "4",
                        kind="integer",
                    ),
                    "access_token_expire_seconds": _option(
                        "Lifetime of an access token of Muxly's API, in seconds.",
                        "3600",
                        "900",
                        kind="integer",
                    ),
                    "refresh_token_expire_seconds": _option(
                        "Lifetime of a login session (its rotating refresh tokens), in seconds.",
                        "604800",
                        "86400",
                        kind="integer",
                    ),
                    "login_max_failures": _option(
                        "Failed logins allowed per (user name, client) pair within the window; counted in "
                        "Muxly's database, shared by all api-server workers.",
                        "5",
                        "5",
                        kind="integer",
                    ),
                    "login_failure_window_seconds": _option(
                        "Window (and lockout) of the login throttle, in seconds.",
                        "300",
                        "300",
                        kind="integer",
                    ),
                    "airflow_user_role": _option(
                        "Muxly role given to a user authenticated by the Airflow UI's own token; empty refuses "
                        "those tokens.",
                        "viewer",
                        "operator",
                    ),
                    "keycloak_server_url": _option(
                        "Keycloak base URL; empty disables Keycloak bearer tokens.",
                        "",
                        "https://sso.example.com",
                    ),
                    "keycloak_realm": _option("The Keycloak realm.", "", "data-platform"),
                    "keycloak_client_id": _option(
                        "Muxly's client in the realm; with Keycloak enabled, this or keycloak_audience is "
                        "required (the API answers 503 without it).",
                        "",
                        "muxly",
                    ),
                    "keycloak_audience": _option(
                        "The 'aud' a Keycloak token must carry (default: the client id).", "", "muxly"
                    ),
                    "keycloak_role_mapping": _option(
                        "realm-role:muxly-role pairs, comma-separated, or 'none'; required with Keycloak "
                        "enabled (the API answers 503 without it). Realm roles grant Muxly roles only "
                        "through this mapping, never by name.",
                        "",
                        "platform-admins:admin,analysts:viewer",
                    ),
                    "keycloak_jwks_cache_seconds": _option(
                        "How long fetched Keycloak signing keys are kept, in seconds.",
                        "300",
                        "300",
                        kind="integer",
                    ),
                    "trusted_proxies": _option(
                        "Addresses or CIDR networks of reverse proxies whose X-Forwarded-For header is "
                        "believed (login throttling); empty: the connection's peer address is the client.",
                        "",
                        "10.0.0.0/8,192.0.2.10",
                    ),
                    "webhook_replay_window_seconds": _option(
                        "How long a signed webhook delivery is remembered to refuse replays, in seconds "
                        "(at least 600); after it the same signed bytes are accepted again.",
                        "86400",
                        "86400",
                        kind="integer",
                    ),
                    "webhook_max_body_bytes": _option(
                        "Largest webhook request body accepted, in bytes.",
                        "1048576",
                        "1048576",
                        kind="integer",
                    ),
                    "webhook_event_retention_seconds": _option(
                        "How long valid webhook deliveries are kept in webhook_events for sensors and event "
                        "triggers, in seconds (at least 60); older ones are deleted with their claims.",
                        "86400",
                        "86400",
                        kind="integer",
                    ),
                    "webhook_sensor_lookback_seconds": _option(
                        "How long before a MuxlyWebhookSensor (or an event trigger) starts waiting a delivery "
                        "still counts, in seconds; a sensor's lookback_seconds overrides it.",
                        "300",
                        "300",
                        kind="integer",
                    ),
                    "webhook_asset_uri_prefixes": _option(
                        "Comma-separated asset URI prefixes a webhook trigger's asset_uri may name (a delivery "
                        "runs every DAG scheduled on the asset); '*': any asset; empty: none.",
                        "x-muxly-webhook://",
                        "x-muxly-webhook://,s3://landing/",
                    ),
                    "template_max_bytes": _option(
                        "Largest rendered output of one template (action_params, destination templates), in "
                        "bytes; larger values are refused before they are built.",
                        "1048576",
                        "1048576",
                        kind="integer",
                    ),
                    "api_max_body_bytes": _option(
                        "Largest request body of the management API (/api/v1), in bytes; larger bodies get "
                        "413 before they are parsed or authenticated.",
                        "1048576",
                        "1048576",
                        kind="integer",
                    ),
                    "allowed_conn_ids": _option(
                        "The Airflow connections that connectors and destinations may name in conn_id: "
                        "fnmatch patterns, comma- or space-separated (muxly_*, reporting_db). Empty allows "
                        "any connection; checked when a row is written and when a run opens the connection.",
                        "",
                        "muxly_*, reporting_db",
                    ),
                    "allow_link_local_requests": _option(
                        "Let connectors, destinations and token requests reach link-local addresses "
                        "(169.254.0.0/16, fe80::/10) and cloud metadata endpoints (169.254.169.254, ...).",
                        "False",
                        "False",
                        kind="boolean",
                    ),
                },
            }
        },
    }
