#!/usr/bin/env python3
"""The local endpoint on the wire as real S3 behaves there, checked with boto3 (a client we did not write).

Usage: s3_boto3_wire.py HTTPS_URL

The server is expected to run with TLS (its CA in AWS_CA_BUNDLE, which botocore
honours) and these buckets:
  wire-plain                                   (no settings)
  wire-eu@eu-west-1                            (placed in a region)
  wire-kms,owner=111122223333,require-sse=aws:kms

Checks, one line each; raises (exit 1) on the first failure:
  - HTTPS round trip with AWS_CA_BUNDLE; S3's default encryption (AES256) reported;
  - SSE-KMS stored and returned on PUT, GET and HEAD, the key as an ARN;
  - a bucket policy requiring aws:kms: 403 AccessDenied without it;
  - x-amz-expected-bucket-owner: 403 AccessDenied for another account;
  - CRC32 / SHA256 checksums verified (BadDigest on a wrong value) and
    returned with ChecksumMode=ENABLED;
  - a bucket in eu-west-1 used from a us-east-1 client: boto3 follows S3's
    redirect by itself; the raw answers (301 PermanentRedirect + x-amz-bucket-region,
    HEAD without a body, 400 AuthorizationHeaderMalformed when the Host names
    the bucket's region) are checked with botocore's own signer.
"""
import base64
import hashlib
import os
import socket
import zlib
import sys
import urllib.parse

import boto3
import botocore
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

url = sys.argv[1]
ca = os.environ["AWS_CA_BUNDLE"]
# Default checksum settings: PutObject goes out aws-chunked with a trailing
# CRC32 over HTTPS (s3_boto3_chunked.py checks that form itself); the
# checksum checks below give theirs explicitly, as headers.
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30)


def client(region="us-east-1"):
    return boto3.client("s3", endpoint_url=url, region_name=region, config=cfg)


def expect_error(fn, code, status):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code and st == status, f"expected {code} ({status}), got {got} ({st})"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def ok(msg):
    print("ok:", msg, flush=True)


s3 = client()

# ---- TLS round trip, default encryption
r = s3.put_object(Bucket="wire-plain", Key="hello.txt", Body=b"hello over tls")
assert r["ServerSideEncryption"] == "AES256", r
got = s3.get_object(Bucket="wire-plain", Key="hello.txt")
assert got["Body"].read() == b"hello over tls"
assert got["ServerSideEncryption"] == "AES256"
ok("PutObject/GetObject over HTTPS (AWS_CA_BUNDLE), default encryption AES256")

# ---- SSE-KMS
r = s3.put_object(Bucket="wire-kms", Key="k.bin", Body=b"secret", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
assert r["ServerSideEncryption"] == "aws:kms", r
arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
assert r["SSEKMSKeyId"] == arn, r
h = s3.head_object(Bucket="wire-kms", Key="k.bin")
assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == arn, h
g = s3.get_object(Bucket="wire-kms", Key="k.bin")
assert g["ServerSideEncryption"] == "aws:kms" and g["SSEKMSKeyId"] == arn
ok("SSE-KMS stored and returned on PUT, HEAD and GET (key as ARN)")

expect_error(lambda: s3.put_object(Bucket="wire-kms", Key="plain.bin", Body=b"x"), "AccessDenied", 403)
expect_error(lambda: s3.put_object(Bucket="wire-kms", Key="aes.bin", Body=b"x", ServerSideEncryption="AES256"),
             "AccessDenied", 403)
ok("require-sse=aws:kms: 403 AccessDenied without it or with AES256")

expect_error(lambda: s3.put_object(Bucket="wire-plain", Key="x", Body=b"x", SSEKMSKeyId="abc"), "InvalidArgument",
             400)
ok("a KMS key id without aws:kms: 400 InvalidArgument")

# ---- expected bucket owner
s3.head_object(Bucket="wire-kms", Key="k.bin", ExpectedBucketOwner="111122223333")
expect_error(lambda: s3.head_object(Bucket="wire-kms", Key="k.bin", ExpectedBucketOwner="999999999999"),
             "403", 403)
expect_error(lambda: s3.get_object(Bucket="wire-kms", Key="k.bin", ExpectedBucketOwner="999999999999"),
             "AccessDenied", 403)
s3.put_object(Bucket="wire-plain", Key="own", Body=b"x", ExpectedBucketOwner="000000000000")
ok("x-amz-expected-bucket-owner: the owner passes, another account gets 403 AccessDenied")


# ---- checksums, given as headers (botocore's own travels as an aws-chunked trailer)
body = b"checked bytes"
crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
r = s3.put_object(Bucket="wire-plain", Key="ck", Body=body, ChecksumCRC32=crc)
assert r.get("ChecksumCRC32") == crc, r
h = s3.head_object(Bucket="wire-plain", Key="ck", ChecksumMode="ENABLED")
assert h.get("ChecksumCRC32") == crc, h
sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
s3.put_object(Bucket="wire-plain", Key="ck256", Body=body, ChecksumSHA256=sha)
expect_error(lambda: s3.put_object(Bucket="wire-plain", Key="bad", Body=body, ChecksumSHA256=sha[::-1]),
             "BadDigest", 400)
expect_error(lambda: s3.put_object(Bucket="wire-plain", Key="bad", Body=b"checked bytes", ChecksumCRC32="AAAAAA=="),
             "BadDigest", 400)
ok("CRC32/SHA256 checksums verified (BadDigest on mismatch), returned with ChecksumMode=ENABLED")

# ---- regions: boto3 follows the redirect itself
s3.put_object(Bucket="wire-eu", Key="far.txt", Body=b"from far away")
assert s3.get_object(Bucket="wire-eu", Key="far.txt")["Body"].read() == b"from far away"
loc = s3.get_bucket_location(Bucket="wire-eu")["LocationConstraint"]
assert loc == "eu-west-1", loc
ok("a eu-west-1 bucket from a us-east-1 client: boto3 followed S3's region redirect")

# ---- the raw answers, signed by botocore for the wrong region
creds = boto3.session.Session().get_credentials().get_frozen_credentials()
http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca)


def raw(method, path, region, host=None):
    req = AWSRequest(method=method, url=url + path, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    if host:
        req.headers["Host"] = host
    SigV4Auth(creds, "s3", region).add_auth(req)
    return http.request(method, url + path, headers=dict(req.headers.items()), redirect=False, retries=False)


r = raw("GET", "/wire-eu/far.txt", "us-east-1")
assert r.status == 301, r.status
assert r.headers.get("x-amz-bucket-region") == "eu-west-1", dict(r.headers)
body = r.data.decode()
assert "<Code>PermanentRedirect</Code>" in body and "<Endpoint>" in body, body
r = raw("HEAD", "/wire-eu/far.txt", "us-east-1")
assert r.status == 301 and r.headers.get("x-amz-bucket-region") == "eu-west-1" and not r.data, (r.status, r.data)
r = raw("GET", "/wire-eu/far.txt", "us-east-1", host="s3.eu-west-1.amazonaws.com")
assert r.status == 400, r.status
body = r.data.decode()
assert "<Code>AuthorizationHeaderMalformed</Code>" in body and "<Region>eu-west-1</Region>" in body, body
r = raw("GET", "/wire-eu/far.txt", "eu-west-1")
assert r.status == 200 and r.data == b"from far away", r.status
ok("raw: 301 PermanentRedirect + x-amz-bucket-region (HEAD: no body), 400 AuthorizationHeaderMalformed "
   "with <Region> on the regional host, 200 when signed for eu-west-1")

# ---- virtual-hosted addressing over TLS: BUCKET.s3.asd.test (the server runs
# with -domain s3.asd.test, its certificate names *.s3.asd.test); the name is
# resolved to loopback inside this process only.
_getaddrinfo = socket.getaddrinfo


def loopback_getaddrinfo(host, *args, **kwargs):
    if host == "s3.asd.test" or str(host).endswith(".s3.asd.test"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = loopback_getaddrinfo
vcfg = cfg.merge(Config(s3={"addressing_style": "virtual"}))
vh = boto3.client("s3", endpoint_url=url.replace("127.0.0.1", "s3.asd.test"), region_name="us-east-1", config=vcfg)
seen = []
vh.meta.events.register("before-send.s3.*", lambda request, **kw: seen.append(request.url))
vh.put_object(Bucket="wire-plain", Key="vhost.txt", Body=b"by host name")
assert seen and seen[-1].startswith("https://wire-plain.s3.asd.test:"), seen
assert s3.get_object(Bucket="wire-plain", Key="vhost.txt")["Body"].read() == b"by host name"
listed = [o["Key"] for o in vh.list_objects_v2(Bucket="wire-plain", Prefix="vh")["Contents"]]
assert listed == ["vhost.txt"], listed
ok("virtual-hosted addressing over TLS (wire-plain.s3.asd.test, SNI and host name verified)")
print("all boto3 wire checks passed")
