"""A real S3-compatible server on this machine for object-store tests: moto's ThreadedMotoServer (a `test` extra).

It stands in for a cloud bucket, which cannot exist here. `s3_bucket()` starts it on a free port, points the AWS
variables of this process (and so of subprocesses it starts) at it with dummy credentials, creates a bucket and
yields the `s3://` root to use; the variables are restored and the server stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


@contextlib.contextmanager
def s3_bucket(bucket: str = "rmorch-test") -> Iterator[str]:
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**FAKE_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http",
                          allow_bucket_creation=True).create_dir(bucket)
        yield f"s3://{bucket}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
