#!/usr/bin/env python3
"""boto3 at its DEFAULT checksum settings against the local endpoint.

Usage: s3_boto3_chunked.py URL BUCKET

botocore >= 1.36 computes a CRC32 of every PutObject / UploadPart body by
default.  Over HTTPS it sends the body aws-chunked with the CRC32 as a
trailing header (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER);
over HTTP it sends the CRC32 as a header.  This script checks which form went
out (so the test proves what it claims), that the endpoint stored exactly the
bytes, and that the checksum it stored is the right one: GetObject with
ChecksumMode=ENABLED makes botocore itself validate the body against the
x-amz-checksum-crc32 the endpoint returns.  Raises (exit 1) on the first failure.
"""
import base64
import os
import sys
import tempfile
import zlib

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

url, bucket = sys.argv[1], sys.argv[2]
https = url.startswith("https://")
# Nothing about checksums here: the defaults are what is tested.
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
sent = []


def text(v):
    return v.decode() if isinstance(v, bytes) else v


s3.meta.events.register("before-send.s3.*", lambda request, **kw: sent.append(
    (request.method, request.url, {k.lower(): text(v) for k, v in request.headers.items()})))


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def ok(msg):
    print("ok:", msg, flush=True)


def expect_form(what, method):
    """The last request of that method went out in the form botocore uses by default."""
    h = [hd for m, _, hd in sent if m == method][-1]
    sha = h.get("x-amz-content-sha256", "")
    if https:
        assert sha == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", (what, sha)
        assert "aws-chunked" in h.get("content-encoding", ""), (what, h)
        assert h.get("x-amz-trailer") == "x-amz-checksum-crc32", (what, h)
    else:
        assert "x-amz-checksum-crc32" in h and not sha.startswith("STREAMING-"), (what, h)


for size in (0, 11, 3 * 1024 * 1024 + 5):
    body = os.urandom(size)
    r = s3.put_object(Bucket=bucket, Key=f"put-{size}", Body=body)
    expect_form(f"PutObject {size} B", "PUT")
    assert r.get("ChecksumCRC32") == crc32_b64(body), (r.get("ChecksumCRC32"), crc32_b64(body))
    g = s3.get_object(Bucket=bucket, Key=f"put-{size}", ChecksumMode="ENABLED")
    assert g.get("ChecksumCRC32") == crc32_b64(body), g.get("ChecksumCRC32")
    assert g["Body"].read() == body  # botocore validates the CRC32 while reading
    h = s3.head_object(Bucket=bucket, Key=f"put-{size}", ChecksumMode="ENABLED")
    assert h["ContentLength"] == size and h.get("ChecksumCRC32") == crc32_b64(body), h
ok(f"PutObject at default checksum settings ({'aws-chunked + trailing CRC32' if https else 'CRC32 header'}), "
   "bytes and CRC32 read back (botocore validated GetObject)")

# A multipart upload as upload_file makes it (s3transfer asks for CRC32 parts).
with tempfile.TemporaryDirectory() as d:
    src, back = os.path.join(d, "src.bin"), os.path.join(d, "back.bin")
    data = os.urandom(12 * 1024 * 1024 + 77)
    with open(src, "wb") as f:
        f.write(data)
    tc = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=2)
    s3.upload_file(src, bucket, "multi.bin", Config=tc)
    parts = [hd for m, u, hd in sent if m == "PUT" and "partNumber=" in u]
    assert len(parts) == 3, len(parts)
    expect_form("UploadPart", "PUT")
    s3.download_file(bucket, "multi.bin", back)
    with open(back, "rb") as f:
        assert f.read() == data
    h = s3.head_object(Bucket=bucket, Key="multi.bin")
    assert h["ContentLength"] == len(data) and h["ETag"].endswith('-3"'), h
ok(f"upload_file in 3 parts at default settings ({'aws-chunked' if https else 'CRC32 headers'}), read back whole")
print("all boto3 default-checksum checks passed")
