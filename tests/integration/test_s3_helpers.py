"""The moto S3 helper: one server that other processes reach over HTTP, and a stop that ends it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.s3_helpers import create_bucket, list_keys, s3_client, start_moto_server


def test_moto_server_is_shared_with_other_processes_and_stops() -> None:
    server = start_moto_server()
    try:
        bucket = create_bucket(server.endpoint_url)
        s3_client(server.endpoint_url).put_object(Bucket=bucket, Key="from/test", Body=b"x")
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from tests.s3_helpers import list_keys; print(list_keys(sys.argv[1], sys.argv[2]))",
                server.endpoint_url,
                bucket,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert child.stdout.strip() == "['from/test']"
        assert list_keys(server.endpoint_url, bucket, "from/") == ["from/test"]
    finally:
        server.stop()
    server.stop()  # twice is harmless
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
