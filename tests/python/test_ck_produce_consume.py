"""confluent-kafka: produce/consume across 8 partitions for every compression codec.

100,000 records per codec (about 4 s each here). Keys, values and
headers (including duplicate header keys) must round-trip unchanged, and each
partition's offsets must be contiguous from 0 and in produce order.
"""
import time
from collections import defaultdict

import pytest
from confluent_kafka import Producer

from helpers import create_topic, consume_partitions, watermarks

PARTITIONS = 8
PER_CODEC = 100_000


def _headers(i, codec):
    # duplicate header keys ("dup" twice, in order) and a binary header value
    return [("seq", str(i).encode()), ("dup", b"first"), ("dup", b"second"),
            ("codec", codec.encode()), ("bin", bytes([i % 256, 0, 255]))]


def _key(i):
    return None if i % 997 == 0 else ("key-%06d" % i).encode()


def _value(i):
    if i % 1009 == 0:
        return b""  # empty (not null) value
    return ("value-%06d-" % i).encode() + b"x" * (i % 200)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codec_roundtrip(broker, codec):
    topic = create_topic(broker.bootstrap, "codec-" + codec, PARTITIONS)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                  "linger.ms": 20, "batch.num.messages": 2000, "acks": "all",
                  "message.timeout.ms": 30000})
    reports = {}
    errors = []

    def on_delivery(i, err, msg):
        # (headers are not exposed on delivery reports, so the index is bound per message)
        if err is not None:
            errors.append((i, err))
        else:
            reports[i] = (msg.partition(), msg.offset())

    for i in range(PER_CODEC):
        while True:
            try:
                p.produce(topic, key=_key(i), value=_value(i), partition=i % PARTITIONS,
                          headers=_headers(i, codec),
                          on_delivery=lambda err, msg, i=i: on_delivery(i, err, msg))
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, "%d messages still queued after flush" % left
    assert not errors, "delivery errors: %r" % errors[:5]
    assert len(reports) == PER_CODEC

    # Delivery-report offsets: contiguous per partition, in produce order.
    per_part = defaultdict(list)
    for i in range(PER_CODEC):
        part, off = reports[i]
        assert part == i % PARTITIONS
        per_part[part].append(off)
    for part, offs in per_part.items():
        assert offs == list(range(len(offs))), "partition %d offsets not contiguous/in order" % part

    for part in range(PARTITIONS):
        lo, hi = watermarks(broker.bootstrap, topic, part)
        assert (lo, hi) == (0, PER_CODEC // PARTITIONS), "partition %d watermarks" % part

    msgs = consume_partitions(broker.bootstrap, topic, range(PARTITIONS), PER_CODEC,
                              timeout=90, settle=1.0)
    assert len(msgs) == PER_CODEC, "consumed %d of %d" % (len(msgs), PER_CODEC)
    seen = defaultdict(list)
    for m in msgs:
        h = m.headers()
        i = int(h[0][1])
        assert h == _headers(i, codec), "headers of record %d changed: %r" % (i, h)
        assert m.key() == _key(i), "key of record %d" % i
        assert m.value() == _value(i), "value of record %d" % i
        assert m.partition() == i % PARTITIONS
        assert (m.partition(), m.offset()) == reports[i], "record %d offset differs from its delivery report" % i
        seen[m.partition()].append((m.offset(), i))
    for part in range(PARTITIONS):
        offs = [o for o, _ in seen[part]]
        assert offs == list(range(PER_CODEC // PARTITIONS)), "partition %d offsets on fetch" % part
        ids = [i for _, i in seen[part]]
        assert ids == list(range(part, PER_CODEC, PARTITIONS)), "partition %d order" % part
