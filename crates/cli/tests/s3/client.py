"""S3 checks with boto3 (a real S3 client) against a rookery object store.

Usage: client.py ENDPOINT ACCESS SECRET MODE [ARGS]; prints one JSON object.
Modes:
  roundtrip BUCKET   create the bucket, put/get 1 KiB and 64 MiB (multipart) objects, list, delete one,
                     keep `kept.bin` for later; wrong secret must get 403; 200 x 4 KiB PUT/GET latencies
  check BUCKET SHA   read `kept.bin` back and compare its sha256
  quota BUCKET N     put objects until the gateway refuses; report how many were accepted
"""
import hashlib
import json
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, access, secret, mode = sys.argv[1:5]
args = sys.argv[5:]


def client(secret_key):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


s3 = client(secret)
out = {}
if mode == "roundtrip":
    bucket = args[0]
    s3.create_bucket(Bucket=bucket)
    small = os.urandom(1024)
    s3.put_object(Bucket=bucket, Key="small.bin", Body=small)
    got = s3.get_object(Bucket=bucket, Key="small.bin")["Body"].read()
    out["small_equal"] = hashlib.sha256(got).hexdigest() == hashlib.sha256(small).hexdigest()
    big = os.urandom(64 << 20)
    path = "/tmp/rookery-s3-%d.bin" % os.getpid()
    with open(path, "wb") as f:
        f.write(big)
    cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    t = time.time()
    s3.upload_file(path, bucket, "big.bin", Config=cfg)
    out["big_put_secs"] = time.time() - t
    os.unlink(path)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    out["big_multipart"] = "-" in head["ETag"]
    t = time.time()
    got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    out["big_get_secs"] = time.time() - t
    out["big_equal"] = hashlib.sha256(got).hexdigest() == hashlib.sha256(big).hexdigest()
    s3.put_object(Bucket=bucket, Key="kept.bin", Body=small)
    out["kept_sha"] = hashlib.sha256(small).hexdigest()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    out["listed"] = sorted(keys)
    s3.delete_object(Bucket=bucket, Key="small.bin")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    out["after_delete"] = sorted(keys)
    try:
        client("x" * 40).get_object(Bucket=bucket, Key="kept.bin")
        out["wrong_secret_status"] = 200
    except ClientError as e:
        out["wrong_secret_status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
    body = os.urandom(4096)
    puts, gets = [], []
    for i in range(200):
        t = time.perf_counter()
        s3.put_object(Bucket=bucket, Key="lat/%d" % i, Body=body)
        puts.append((time.perf_counter() - t) * 1000)
    for i in range(200):
        t = time.perf_counter()
        s3.get_object(Bucket=bucket, Key="lat/%d" % i)["Body"].read()
        gets.append((time.perf_counter() - t) * 1000)
    out["put_ms"] = {"p50": pct(puts, 50), "p99": pct(puts, 99)}
    out["get_ms"] = {"p50": pct(gets, 50), "p99": pct(gets, 99)}
    for i in range(200):
        s3.delete_object(Bucket=bucket, Key="lat/%d" % i)
elif mode == "check":
    bucket, sha = args
    got = s3.get_object(Bucket=bucket, Key="kept.bin")["Body"].read()
    out["equal"] = hashlib.sha256(got).hexdigest() == sha
elif mode == "quota":
    bucket, limit = args[0], int(args[1])
    s3.create_bucket(Bucket=bucket)
    accepted = 0
    out["refusal"] = None
    for i in range(limit + 3):
        try:
            s3.put_object(Bucket=bucket, Key="q/%d" % i, Body=b"x" * 1024)
            accepted += 1
        except ClientError as e:
            out["refusal"] = e.response["Error"]["Code"]
            break
    out["accepted"] = accepted
print(json.dumps(out))
