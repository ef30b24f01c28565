"""The ``s3`` destination: one object per batch in an S3 (or S3-compatible) bucket, through the Amazon
provider's ``S3Hook``.

Options (REFERENCE.md): ``bucket``, ``key_prefix``, ``region``, ``output_format`` (json, csv; jsonl new),
``key_template``, ``credentials`` (``access_key_id``, ``secret_access_key``; stored encrypted), ``content_type``;
(new) ``endpoint_url`` (MinIO, Ceph, LocalStack, ...) and ``conn_id`` (an Airflow ``aws`` connection as the
Amazon provider reads it: login and password are the keys, extras ``region_name``, ``endpoint_url``,
``role_arn``, ``config_kwargs``, ... and ``service_config.s3.bucket_name``, the bucket when ``bucket`` is
unset). With a ``conn_id`` nothing else is needed. Without credentials or a connection the hook finds them
itself (environment, instance role). Both ways end in one ``S3Hook`` (``airflow-provider-muxly[amazon]``, the
same as ``[s3]``): inline options become an in-memory ``aws`` connection, and ``region`` / ``endpoint_url``
override a connection's (:mod:`muxly_provider.hooks.providers`).

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
from muxly_provider.hooks import providers as provider_hooks

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
        self._hook: Any = None
        self._bucket: str | None = None
        self.keys: list[str] = []

    def _connection(self) -> Any:
        """The ``aws`` connection the hook works on: ``conn_id``'s or the inline options, with ``region`` and
        ``endpoint_url`` over it."""
        s = self.settings
        login = password = None
        extra: dict[str, Any] = {}
        conn_id = f"muxly_s3_{self.context.id}"
        if s.credentials is not None:
            login, password = s.credentials.access_key_id, s.credentials.secret_access_key
        elif s.conn_id:
            try:
                conn = provider_hooks.get_connection(s.conn_id)
            except provider_hooks.MuxlyConnectionError as exc:
                raise self.fail(str(exc), retryable=not exc.permanent) from None
            conn_id, login, password, extra = s.conn_id, conn.login, conn.password, dict(conn.extra_dejson)
            self._secrets = sorted({*self._secrets, str(password or "")} - {""}, key=len, reverse=True)
        if s.region:
            extra["region_name"] = s.region
        if s.endpoint_url:
            extra["endpoint_url"] = s.endpoint_url
        return provider_hooks.make_connection(conn_id, "aws", login=login, password=password, extra=extra)

    @property
    def hook(self) -> Any:
        """The ``S3Hook`` (created at the first batch)."""
        if self._hook is None:
            try:
                module = provider_hooks.import_module("s3", "S3 delivery")
            except provider_hooks.MuxlyProviderMissingError as exc:
                raise self.fail(str(exc), retryable=False) from None
            from botocore.config import Config

            connection = self._connection()
            options: dict[str, Any] = {"aws_conn_id": connection.conn_id}
            if "config_kwargs" not in connection.extra_dejson:  # the connection's own client settings win
                options["config"] = Config(
                    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=10, read_timeout=60
                )
            self._hook = provider_hooks.on_connection(module.S3Hook, connection, **options)
        return self._hook

    @property
    def bucket(self) -> str:
        """``bucket``, else the connection's ``service_config.s3.bucket_name``."""
        if self._bucket is None:
            bucket = self.settings.bucket or self.hook.service_config.get("bucket_name")
            if not bucket:
                raise self.fail(
                    f"no bucket: set bucket, or service_config.s3.bucket_name in the extras of Airflow "
                    f"connection {self.settings.conn_id!r}",
                    retryable=False,
                )
            self._bucket = str(bucket)
        return self._bucket

    def key(self, batch: int) -> str:
        """The object key of batch number ``batch`` of this run."""
        context = template_context(
            self.run,
            destination_id=self.context.id,
            destination_name=self.context.name,
            extra={"batch": f"{batch:05d}", "ext": self.settings.output_format},
        )
        try:
            key = render(self.key_template, context, field="config.key_template")
            return self.settings.key_prefix + key.lstrip("/")
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None

    def write_batch(self, records: list[Record]) -> None:
        """Put the batch as one object (a retry of the same batch overwrites it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(self.batch_index)
        body = encode(records, self.settings.output_format)
        content_type = self.settings.content_type or CONTENT_TYPES[self.settings.output_format]
        try:
            client = self.hook.get_conn()
            client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
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
        return [f"s3://{self.bucket}/{key}" for key in self.keys]
