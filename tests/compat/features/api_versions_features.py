"""Feature versions in ApiVersions, decoded by kafka-python's own protocol types (an
implementation independent of Quill's encoder), driven by crates/quill/tests/cluster_apis.rs.

    python api_versions_features.py <host> <port>

kafka-python 2.3 keeps ApiVersions v3/v4's top-level tagged fields as raw bytes (it checks
their order and sizes but has no feature API); this decodes them with the layouts of Kafka's
ApiVersionsResponse schema (tag 0 SupportedFeatures: name, min, max; tag 1
FinalizedFeaturesEpoch; tag 2 FinalizedFeatures: name, max level, min level) and prints one
JSON object per request version. Every wait is bounded.
"""

import io
import json
import socket
import sys
import time

from kafka.conn import BrokerConnection
from kafka.protocol.api_versions import ApiVersionsRequest
from kafka.protocol.types import CompactArray, CompactString, Int16, Int64, TaggedFields

host, port = sys.argv[1], int(sys.argv[2])
TIMEOUT_S = 20

SUPPORTED = CompactArray(
    ("name", CompactString("utf-8")),
    ("min_version", Int16),
    ("max_version", Int16),
    ("_tagged_fields", TaggedFields))
FINALIZED = CompactArray(
    ("name", CompactString("utf-8")),
    ("max_version_level", Int16),
    ("min_version_level", Int16),
    ("_tagged_fields", TaggedFields))


def decode_whole(kind, raw):
    buffer = io.BytesIO(raw)
    value = kind.decode(buffer)
    if buffer.read():
        raise AssertionError("trailing bytes in a tagged field")
    return value


def features(version):
    conn = BrokerConnection(host, port, socket.AF_INET, api_version=(2, 4))
    deadline = time.time() + TIMEOUT_S
    while not conn.connected():
        conn.connect()
        if time.time() > deadline:
            raise AssertionError("could not connect")
        # Polls the non-blocking connect (kafka-python offers no wait), bounded above.
        time.sleep(0.01)
    future = conn.send(ApiVersionsRequest[version](
        client_software_name="kafka-python", client_software_version="2.3.3", _tagged_fields={}))
    while not future.is_done:
        # recv() hands back (response, future) pairs; completing them is the caller's job.
        for response, completed in conn.recv():
            completed.success(response)
        if time.time() > deadline:
            raise AssertionError("no ApiVersions response")
    conn.close()
    if future.failed():
        raise future.exception
    response = future.value
    tags = response._tagged_fields
    return {
        "version": version,
        "error_code": response.error_code,
        "tags": sorted(tags),
        "supported": [[f[0], f[1], f[2]] for f in decode_whole(SUPPORTED, tags.get(0, b"\x01"))],
        "epoch": decode_whole(Int64, tags[1]) if 1 in tags else None,
        "finalized": [[f[0], f[2], f[1]] for f in decode_whole(FINALIZED, tags.get(2, b"\x01"))],
    }


for version in (3, 4):
    print(json.dumps(features(version)), flush=True)
