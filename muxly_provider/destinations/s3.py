"""The ``s3`` destination: one object per batch in an S3 (or S3-compatible) bucket, through boto3.

Options (REFERENCE.md): ``bucket``, ``key_prefix``, ``region``, ``output_format`` (json, csv; jsonl new),
``key_template``, ``credentials`` (``access_key_id``, ``secret_access_key``; stored encrypted), ``content_type``;
(new) ``endpoint_url`` (MinIO, Ceph, LocalStack, ...) and ``conn_id`` (an Airflow ``aws`` connection: login and
password are the keys, extras ``region_name`` and ``endpoint_url``). Without credentials or a connection boto3
finds them itself (environment, instance role).

Keys are deterministic per run and batch, so a retried task overwrites its own objects instead of adding
duplicates: ``key_prefix`` + ``key_template`` rendered with the template variables plus ``batch`` (zero-padded
to 5 digits) and ``ext`` (the format's extension). The default template is
``{{connector_id}}/{{date}}/{{destination_id}}_{{run_key}}_{{batch}}.{{ext}}``. A template without
``{{batch}}`` gets ``_<batch>`` appended, so batches never overwrite each other.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from muxly_provider.config.destinations import S3DestinationConfig
from muxly_provider.destinations.base import MuxlyDestination, Record
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    template_context,
)

DEFAULT_KEY_TEMPLATE = "{{connector_id}}/{{date}}/{{destination_id}}_{{run_key}}_{{batch}}.{{ext}}"
CONTENT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}
_PERMANENT_CODES = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
}


def encode(records: list[Record], output_format: str) -> bytes:
    """The batch as the bytes of an object in ``output_format`` (json array, jsonl or csv with a header)."""
    if output_format == "jsonl":
        return "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records).encode()
    if output_format == "csv":
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=list(columns))
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    k: json.dumps(v, default=str) if isinstance(v, dict | list) else v
                    for k, v in record.items()
                }
            )
        return out.getvalue().encode()
    return json.dumps(records, default=str, ensure_ascii=False).encode()


class S3Destination(MuxlyDestination):
    """Write each batch as an object."""

    destination_type = "s3"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(S3DestinationConfig)
        template = self.settings.key_template or DEFAULT_KEY_TEMPLATE
        if "batch" not in template:
            template += "_{{batch}}"
        self.key_template = template
        try:
            check_template(template)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._client: Any = None
        self.keys: list[str] = []

    def _client_options(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {"region_name": s.region, "endpoint_url": s.endpoint_url}
        if s.credentials is not None:
            options["aws_access_key_id"] = s.credentials.access_key_id
            options["aws_secret_access_key"] = s.credentials.secret_access_key
        elif s.conn_id:
            from airflow.sdk import BaseHook

            try:
                conn = BaseHook.get_connection(s.conn_id)
            except Exception as exc:
                raise self.fail(
                    f"Airflow connection {s.conn_id!r} not found ({type(exc).__name__})"
                ) from None
            extra = conn.extra_dejson
            if conn.login:
                options["aws_access_key_id"] = conn.login
                options["aws_secret_access_key"] = conn.password
                self._secrets = sorted(
                    {*self._secrets, str(conn.password or "")} - {""}, key=len, reverse=True
                )
            options["region_name"] = s.region or extra.get("region_name")
            options["endpoint_url"] = s.endpoint_url or extra.get("endpoint_url")
        return {k: v for k, v in options.items() if v}

    @property
    def client(self) -> Any:
        """The boto3 S3 client (created at the first batch)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": 2}, connect_timeout=10, read_timeout=60
            )
            self._client = boto3.client("s3", config=config, **self._client_options())
        return self._client

    def key(self, batch: int) -> str:
        """The object key of batch number ``batch`` of this run."""
        context = template_context(
            self.run,
            destination_id=self.context.id,
            destination_name=self.context.name,
            extra={"batch": f"{batch:05d}", "ext": self.settings.output_format},
        )
        try:
            return self.settings.key_prefix + render(self.key_template, context).lstrip("/")
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None

    def write_batch(self, records: list[Record]) -> None:
        """Put the batch as one object (a retry of the same batch overwrites it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(self.batch_index)
        body = encode(records, self.settings.output_format)
        content_type = self.settings.content_type or CONTENT_TYPES[self.settings.output_format]
        try:
            self.client.put_object(Bucket=self.settings.bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "error"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            retryable = code not in _PERMANENT_CODES and (status == 0 or status >= 500 or status == 429)
            raise self.fail(f"S3 {code} for key {key!r}", retryable=retryable) from None
        except BotoCoreError as exc:
            raise self.fail(f"S3 unreachable ({type(exc).__name__})") from None
        self.batch_index += 1
        self.keys.append(key)
        self.delivered += len(records)

    def commit(self) -> list[str]:
        """Objects were put by :meth:`write_batch`: their ``s3://`` URLs."""
        return [f"s3://{self.settings.bucket}/{key}" for key in self.keys]
