#!/usr/bin/env python3
"""S3 conformance of the local endpoint, driven by boto3 (a client we did not write).

Usage: s3_boto3_check.py ENDPOINT_URL

Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
region us-east-1).  Every check raises on failure; the script prints one line per
check and exits 0 only when all pass.  Driven by autotest/conformance/test_s3_clients.cpp.
"""
import hashlib
import os
import sys
import tempfile

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

url = sys.argv[1]
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
             connect_timeout=10, read_timeout=30)


def client(key=None, secret=None):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg,
                        aws_access_key_id=key or os.environ["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"])


def expect_error(fn, code, status=None):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code or (status and str(got) == str(status)), f"expected {code}, got {got} ({st})"
        if status:
            assert st == status, f"expected HTTP {status}, got {st}"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def check(name, fn):
    fn()
    print(f"ok {name}", flush=True)


s3 = client()
B = "boto3-bucket"


def create_and_head():
    s3.create_bucket(Bucket=B)
    s3.head_bucket(Bucket=B)
    expect_error(lambda: s3.create_bucket(Bucket=B), "BucketAlreadyOwnedByYou", 409)
    expect_error(lambda: s3.head_bucket(Bucket="no-such-bucket-here"), "404", 404)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert B in names, names


def put_get_head():
    body = os.urandom(100000)
    r = s3.put_object(Bucket=B, Key="a/b c+d.bin", Body=body, ContentType="application/x-test")
    etag = '"%s"' % hashlib.md5(body).hexdigest()
    assert r["ETag"] == etag, r["ETag"]
    g = s3.get_object(Bucket=B, Key="a/b c+d.bin")
    assert g["Body"].read() == body
    assert g["ContentType"] == "application/x-test"
    assert g["ETag"] == etag
    assert g["ContentLength"] == len(body)
    h = s3.head_object(Bucket=B, Key="a/b c+d.bin")
    assert h["ContentLength"] == len(body) and h["ETag"] == etag
    assert h["LastModified"] is not None
    rg = s3.get_object(Bucket=B, Key="a/b c+d.bin", Range="bytes=10-19")
    assert rg["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert rg["Body"].read() == body[10:20]
    assert rg["ContentRange"] == "bytes 10-19/100000", rg["ContentRange"]
    rs = s3.get_object(Bucket=B, Key="a/b c+d.bin", Range="bytes=-5")
    assert rs["Body"].read() == body[-5:]
    expect_error(lambda: s3.get_object(Bucket=B, Key="a/b c+d.bin", Range="bytes=200000-"), "InvalidRange", 416)
    expect_error(lambda: s3.get_object(Bucket=B, Key="missing"), "NoSuchKey", 404)
    expect_error(lambda: s3.head_object(Bucket=B, Key="missing"), "404", 404)
    expect_error(lambda: s3.get_object(Bucket="no-such-bucket-here", Key="x"), "NoSuchBucket", 404)
    # Empty object and unicode key.
    s3.put_object(Bucket=B, Key="empty", Body=b"")
    assert s3.get_object(Bucket=B, Key="empty")["Body"].read() == b""
    s3.put_object(Bucket=B, Key="unicodé/ключ.txt", Body=b"x")
    assert s3.get_object(Bucket=B, Key="unicodé/ключ.txt")["Body"].read() == b"x"


def listings():
    for i in range(7):
        s3.put_object(Bucket=B, Key=f"list/k{i}", Body=b"%d" % i)
    s3.put_object(Bucket=B, Key="list/sub/x", Body=b"x")
    s3.put_object(Bucket=B, Key="list/sub/y", Body=b"y")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="list/", PaginationConfig={"PageSize": 3})
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == [f"list/k{i}" for i in range(7)] + ["list/sub/x", "list/sub/y"], keys
    r = s3.list_objects_v2(Bucket=B, Prefix="list/", Delimiter="/")
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == ["list/sub/"], r
    assert r["KeyCount"] == 8, r["KeyCount"]
    r = s3.list_objects_v2(Bucket=B, Prefix="list/", StartAfter="list/k5")
    assert [o["Key"] for o in r["Contents"]] == ["list/k6", "list/sub/x", "list/sub/y"]
    # V1 with markers, as GDAL uses it.
    pages = s3.get_paginator("list_objects").paginate(Bucket=B, Prefix="list/", PaginationConfig={"PageSize": 4})
    keys1 = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys1 == keys, keys1
    r = s3.list_objects(Bucket=B, Prefix="list/", Delimiter="/", MaxKeys=100)
    assert [c["Prefix"] for c in r["CommonPrefixes"]] == ["list/sub/"]
    # Keys needing URL encoding in listings (botocore asks for encoding-type=url).
    r = s3.list_objects_v2(Bucket=B, Prefix="a/")
    assert [o["Key"] for o in r["Contents"]] == ["a/b c+d.bin"], r["Contents"]


def deletes():
    s3.delete_object(Bucket=B, Key="list/k0")
    s3.delete_object(Bucket=B, Key="list/k0")  # missing key: still 204
    expect_error(lambda: s3.head_object(Bucket=B, Key="list/k0"), "404", 404)
    r = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": f"list/k{i}"} for i in range(1, 7)]})
    assert sorted(d["Key"] for d in r["Deleted"]) == [f"list/k{i}" for i in range(1, 7)], r
    r = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "list/sub/x"}], "Quiet": True})
    assert not r.get("Deleted"), r
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=B, Prefix="list/").get("Contents", [])]
    assert left == ["list/sub/y"], left


def transfer():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src.bin")
        dst = os.path.join(d, "dst.bin")
        data = os.urandom(3 * 1024 * 1024)
        with open(src, "wb") as f:
            f.write(data)
        s3.upload_file(src, B, "transfer/src.bin")
        s3.download_file(B, "transfer/src.bin", dst)
        with open(dst, "rb") as f:
            assert f.read() == data


def auth_errors():
    bad = client(secret="definitely-not-the-secret")
    expect_error(lambda: bad.list_objects_v2(Bucket=B), "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.put_object(Bucket=B, Key="forged", Body=b"x"), "SignatureDoesNotMatch", 403)
    unknown = client(key="AKIAUNKNOWNKEY000000")
    expect_error(lambda: unknown.get_object(Bucket=B, Key="empty"), "InvalidAccessKeyId", 403)
    expect_error(lambda: s3.head_object(Bucket=B, Key="forged"), "404", 404)


def bad_names():
    # botocore validates bucket names client side for some patterns; use one it lets through.
    expect_error(lambda: s3.head_bucket(Bucket="ab"), "400", 400)
    expect_error(lambda: s3.get_object(Bucket="Invalid_Bucket", Key="x"), "InvalidBucketName", 400)


for name, fn in [("create_and_head", create_and_head), ("put_get_head", put_get_head),
                 ("listings", listings), ("deletes", deletes), ("transfer", transfer),
                 ("auth_errors", auth_errors), ("bad_names", bad_names)]:
    check(name, fn)
print("ALL OK botocore", botocore.__version__)
