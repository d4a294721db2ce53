#!/usr/bin/env python3
"""Multipart uploads, copies and presigned URLs of the local endpoint, driven by boto3.

Usage: s3_boto3_multipart.py ENDPOINT_URL

Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
region us-east-1).  Every check raises on failure; the script prints one line per
check and exits 0 only when all pass.  Driven by autotest/conformance/test_s3_multipart.cpp.
"""
import hashlib
import os
import sys
import tempfile
import time
import http.client
import urllib.parse

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

url = sys.argv[1]
MiB = 1024 * 1024


def client(**extra):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=10,
                 read_timeout=60, **extra)
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg)


s3 = client()
B = "boto3-mpu"


def expect_error(fn, code, status=None):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code, f"expected {code}, got {got} ({st})"
        if status:
            assert st == status, f"expected HTTP {status}, got {st}"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def http_call(method, u, data=None):
    """(status, body) of a plain HTTP request, as curl sends it: no Content-Type
    (urllib would add one, which a SigV2 signature covers)."""
    p = urllib.parse.urlsplit(u)
    conn = http.client.HTTPConnection(p.hostname, p.port, timeout=30)
    try:
        conn.request(method, p.path + ("?" + p.query if p.query else ""), body=data)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def mp_etag(data, chunk):
    md5s = b"".join(hashlib.md5(data[i:i + chunk]).digest() for i in range(0, len(data), chunk))
    return '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), (len(data) + chunk - 1) // chunk)


def transfer_multipart():
    data = os.urandom(12 * MiB + 12345)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=3)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "src.bin"), os.path.join(d, "dst.bin")
        with open(src, "wb") as f:
            f.write(data)
        s3.upload_file(src, B, "big/src.bin", Config=cfg, ExtraArgs={"ContentType": "image/tiff"})
        h = s3.head_object(Bucket=B, Key="big/src.bin")
        assert h["ContentLength"] == len(data), h
        assert h["ETag"] == mp_etag(data, 5 * MiB), (h["ETag"], mp_etag(data, 5 * MiB))
        assert h["ContentType"] == "image/tiff", h["ContentType"]
        s3.download_file(B, "big/src.bin", dst, Config=cfg)
        with open(dst, "rb") as f:
            assert f.read() == data
    # No upload is left behind.
    assert not s3.list_multipart_uploads(Bucket=B).get("Uploads"), "uploads left after upload_file"


def low_level_and_errors():
    p1, p2 = os.urandom(5 * MiB), b"the last part may be small"
    up = s3.create_multipart_upload(Bucket=B, Key="ll/obj", ContentType="text/x-test")
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket=B, Key="ll/obj", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=B, Key="ll/obj", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert e1 == '"%s"' % hashlib.md5(p1).hexdigest()
    parts = s3.list_parts(Bucket=B, Key="ll/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, len(p1), e1), (2, len(p2), e2)], parts
    ups = s3.list_multipart_uploads(Bucket=B, Prefix="ll/")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("ll/obj", uid)], ups
    done = lambda parts: s3.complete_multipart_upload(Bucket=B, Key="ll/obj", UploadId=uid,
                                                      MultipartUpload={"Parts": parts})
    expect_error(lambda: done([{"PartNumber": 1, "ETag": e2}, {"PartNumber": 2, "ETag": e2}]), "InvalidPart", 400)
    expect_error(lambda: done([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]),
                 "InvalidPartOrder", 400)
    expect_error(lambda: done([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e1}]), "InvalidPart", 400)
    # Part 2 (small) followed by another part: EntityTooSmall.
    e3 = s3.upload_part(Bucket=B, Key="ll/obj", UploadId=uid, PartNumber=3, Body=b"x")["ETag"]
    expect_error(lambda: done([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]), "EntityTooSmall", 400)
    expect_error(lambda: s3.upload_part(Bucket=B, Key="ll/other", UploadId=uid, PartNumber=1, Body=b"x"),
                 "NoSuchUpload", 404)
    r = done([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
    assert r["ETag"] == mp_etag(p1 + p2, 5 * MiB), r["ETag"]
    g = s3.get_object(Bucket=B, Key="ll/obj")
    assert g["Body"].read() == p1 + p2
    assert g["ContentType"] == "text/x-test"
    expect_error(lambda: s3.list_parts(Bucket=B, Key="ll/obj", UploadId=uid), "NoSuchUpload", 404)
    # Abort: parts are dropped, the id is dead.
    uid2 = s3.create_multipart_upload(Bucket=B, Key="ll/aborted")["UploadId"]
    s3.upload_part(Bucket=B, Key="ll/aborted", UploadId=uid2, PartNumber=1, Body=b"zzz")
    s3.abort_multipart_upload(Bucket=B, Key="ll/aborted", UploadId=uid2)
    expect_error(lambda: s3.upload_part(Bucket=B, Key="ll/aborted", UploadId=uid2, PartNumber=2, Body=b"x"),
                 "NoSuchUpload", 404)
    expect_error(lambda: s3.head_object(Bucket=B, Key="ll/aborted"), "404", 404)
    expect_error(lambda: s3.abort_multipart_upload(Bucket=B, Key="ll/aborted", UploadId="0" * 32), "NoSuchUpload", 404)
    expect_error(lambda: s3.abort_multipart_upload(Bucket=B, Key="ll/aborted", UploadId="../../etc"),
                 "NoSuchUpload", 404)


def copies():
    s3.put_object(Bucket=B, Key="cp/src", Body=b"copy me", ContentType="text/plain")
    etag = s3.head_object(Bucket=B, Key="cp/src")["ETag"]
    r = s3.copy_object(Bucket=B, Key="cp/dst", CopySource={"Bucket": B, "Key": "cp/src"})
    assert r["CopyObjectResult"]["ETag"] == etag, r
    h = s3.head_object(Bucket=B, Key="cp/dst")
    assert h["ContentType"] == "text/plain" and h["ETag"] == etag, h
    assert s3.get_object(Bucket=B, Key="cp/dst")["Body"].read() == b"copy me"
    s3.copy_object(Bucket=B, Key="cp/dst", CopySource=f"{B}/cp/src", MetadataDirective="REPLACE",
                   ContentType="application/x-replaced")
    assert s3.head_object(Bucket=B, Key="cp/dst")["ContentType"] == "application/x-replaced"
    # Onto itself: only with REPLACE, as S3.
    expect_error(lambda: s3.copy_object(Bucket=B, Key="cp/src", CopySource={"Bucket": B, "Key": "cp/src"}),
                 "InvalidRequest", 400)
    s3.copy_object(Bucket=B, Key="cp/src", CopySource={"Bucket": B, "Key": "cp/src"}, MetadataDirective="REPLACE",
                   ContentType="text/x-self")
    assert s3.head_object(Bucket=B, Key="cp/src")["ContentType"] == "text/x-self"
    expect_error(lambda: s3.copy_object(Bucket=B, Key="cp/x", CopySource={"Bucket": B, "Key": "cp/missing"}),
                 "NoSuchKey", 404)
    expect_error(lambda: s3.copy_object(Bucket=B, Key="cp/x", CopySource={"Bucket": B, "Key": "cp/src"},
                                        CopySourceIfMatch='"00000000000000000000000000000000"'),
                 "PreconditionFailed", 412)
    # Keys needing encoding in the copy source.
    s3.put_object(Bucket=B, Key="cp/a b+c ü", Body=b"odd key")
    s3.copy_object(Bucket=B, Key="cp/odd-copy", CopySource={"Bucket": B, "Key": "cp/a b+c ü"})
    assert s3.get_object(Bucket=B, Key="cp/odd-copy")["Body"].read() == b"odd key"
    # The multipart object of transfer_multipart copied whole, then by ranges with UploadPartCopy.
    src = s3.get_object(Bucket=B, Key="big/src.bin")["Body"].read()
    s3.copy_object(Bucket=B, Key="cp/big", CopySource={"Bucket": B, "Key": "big/src.bin"})
    assert s3.get_object(Bucket=B, Key="cp/big")["Body"].read() == src
    uid = s3.create_multipart_upload(Bucket=B, Key="cp/assembled")["UploadId"]
    parts = []
    for n, (a, b) in enumerate([(0, 5 * MiB - 1), (5 * MiB, len(src) - 1)], start=1):
        r = s3.upload_part_copy(Bucket=B, Key="cp/assembled", UploadId=uid, PartNumber=n,
                                CopySource={"Bucket": B, "Key": "big/src.bin"}, CopySourceRange=f"bytes={a}-{b}")
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(Bucket=B, Key="cp/assembled", UploadId=uid, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=B, Key="cp/assembled")["Body"].read() == src


def user_metadata():
    s3.put_object(Bucket=B, Key="md/obj", Body=b"m", Metadata={"Color": "blue", "x-y": "1 2"})
    h = s3.head_object(Bucket=B, Key="md/obj")
    assert h["Metadata"] == {"color": "blue", "x-y": "1 2"}, h["Metadata"]
    assert s3.get_object(Bucket=B, Key="md/obj")["Metadata"] == {"color": "blue", "x-y": "1 2"}
    # CopyObject: COPY keeps the source's metadata, REPLACE takes the request's.
    s3.copy_object(Bucket=B, Key="md/copy", CopySource={"Bucket": B, "Key": "md/obj"})
    assert s3.head_object(Bucket=B, Key="md/copy")["Metadata"] == {"color": "blue", "x-y": "1 2"}
    s3.copy_object(Bucket=B, Key="md/copy", CopySource={"Bucket": B, "Key": "md/obj"}, MetadataDirective="REPLACE",
                   Metadata={"shape": "round"})
    assert s3.head_object(Bucket=B, Key="md/copy")["Metadata"] == {"shape": "round"}
    s3.copy_object(Bucket=B, Key="md/obj", CopySource={"Bucket": B, "Key": "md/obj"}, MetadataDirective="REPLACE")
    assert s3.head_object(Bucket=B, Key="md/obj")["Metadata"] == {}
    # Multipart: the metadata given to CreateMultipartUpload.
    uid = s3.create_multipart_upload(Bucket=B, Key="md/mp", Metadata={"origin": "parts"})["UploadId"]
    e = s3.upload_part(Bucket=B, Key="md/mp", UploadId=uid, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=B, Key="md/mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.head_object(Bucket=B, Key="md/mp")["Metadata"] == {"origin": "parts"}
    # S3's 2 KB limit.
    expect_error(lambda: s3.put_object(Bucket=B, Key="md/big", Body=b"x", Metadata={"k": "v" * 2100}),
                 "MetadataTooLarge", 400)
    expect_error(lambda: s3.head_object(Bucket=B, Key="md/big"), "404", 404)


def presigned():
    s3.put_object(Bucket=B, Key="ps/obj", Body=b"presigned body")
    for sv in ("s3v4", None):  # None: botocore's default for us-east-1, SigV2 query strings
        c = client(signature_version=sv) if sv else s3
        get = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "ps/obj"}, ExpiresIn=300)
        if sv:
            assert "X-Amz-Signature=" in get, get
        st, body = http_call("GET", get)
        assert (st, body) == (200, b"presigned body"), (sv, st, body)
        head = c.generate_presigned_url("head_object", Params={"Bucket": B, "Key": "ps/obj"}, ExpiresIn=300)
        assert http_call("HEAD", head)[0] == 200, sv
        put = c.generate_presigned_url("put_object", Params={"Bucket": B, "Key": f"ps/put-{sv}"}, ExpiresIn=300)
        st, body = http_call("PUT", put, data=b"uploaded through a presigned URL")
        assert st == 200, (sv, st, body)
        assert s3.get_object(Bucket=B, Key=f"ps/put-{sv}")["Body"].read() == b"uploaded through a presigned URL"
        # A GET URL does not allow a PUT, and a tampered signature is refused.
        st, body = http_call("PUT", get, data=b"forged")
        assert st == 403 and b"SignatureDoesNotMatch" in body, (sv, st, body)
        tampered = get.replace("ps%2Fobj", "ps%2Fput").replace("ps/obj", "ps/put")
        st, body = http_call("GET", tampered)
        assert st == 403 and b"SignatureDoesNotMatch" in body, (sv, st, body)
        # Expired: S3's 403 AccessDenied "Request has expired".
        short = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "ps/obj"}, ExpiresIn=1)
        time.sleep(2.1)
        st, body = http_call("GET", short)
        assert st == 403 and b"AccessDenied" in body and b"Request has expired" in body, (sv, st, body)
    # Signed with the wrong secret.
    bad = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key="wrong-secret",
                       config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    st, body = http_call("GET", bad.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "ps/obj"}))
    assert st == 403 and b"SignatureDoesNotMatch" in body, (st, body)
    # Temporary credentials issued by the endpoint's STS: the token travels in the query.
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1")
    c = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/presigner", RoleSessionName="presign")["Credentials"]
    for sv in ("s3v4", None):
        extra = {"signature_version": sv} if sv else {}
        tmp = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=c["AccessKeyId"],
                           aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"],
                           config=Config(s3={"addressing_style": "path"}, **extra))
        u = tmp.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "ps/obj"}, ExpiresIn=300)
        st, body = http_call("GET", u)
        assert (st, body) == (200, b"presigned body"), (sv, st, body, u)
        tok = urllib.parse.quote(c["SessionToken"], safe="")
        assert tok in u, u
        st, body = http_call("GET", u.replace(tok, tok[:-1] + ("A" if tok[-1] != "A" else "B")))
        assert st in (400, 403) and (b"InvalidToken" in body or b"SignatureDoesNotMatch" in body), (sv, st, body)
    # More than a week: refused as S3 does.
    week = client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": B, "Key": "ps/obj"}, ExpiresIn=604801)
    st, body = http_call("GET", week)
    assert st == 400 and b"AuthorizationQueryParametersError" in body, (st, body)


s3.create_bucket(Bucket=B)
for name, fn in [("transfer_multipart", transfer_multipart), ("low_level_and_errors", low_level_and_errors),
                 ("copies", copies), ("user_metadata", user_metadata), ("presigned", presigned)]:
    fn()
    print(f"ok {name}", flush=True)
print("ALL OK botocore", botocore.__version__)
