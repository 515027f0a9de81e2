from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from streams.partitioner import murmur2, partition_for


def test_murmur2_matches_kafka_python() -> None:
    rng = random.Random(7)
    for n in range(3000):
        data = rng.randbytes(n % 70)
        assert murmur2(data) == kafka_murmur2(data)


def test_java_client_vectors() -> None:
    # Values from Kafka's UtilsTest (Java ints printed as unsigned 32-bit).
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0xFFFFFFFF == (-985981536) & 0xFFFFFFFF


def test_partition_in_range_and_stable() -> None:
    for key in (b"", b"a", b"url-hash-0123456789abcdef"):
        p = partition_for(key, 7)
        assert 0 <= p < 7
        assert partition_for(key, 7) == p
