"""Timestamps: offsets_for_times with explicit producer timestamps, and LogAppendTime topics."""
import time

from confluent_kafka import (Consumer, Producer, TopicPartition, TIMESTAMP_CREATE_TIME,
                             TIMESTAMP_LOG_APPEND_TIME)
from confluent_kafka.admin import OffsetSpec

from helpers import admin, create_topic, consume_partitions

BASE = 1_700_000_000_000  # ms
STEP = 10
N = 200


def _consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "ts-unused",
                     "enable.auto.commit": False})


def _produce_with_timestamps(bootstrap, topic, partition, timestamps):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i, ts in enumerate(timestamps):
        p.produce(topic, value=b"%d" % i, partition=partition, timestamp=ts)
        if i % 50 == 49:
            p.flush(10)  # several batches, so lookups cross batch boundaries
    assert p.flush(20) == 0


def test_offsets_for_times_exact(broker):
    topic = create_topic(broker.bootstrap, "ts-lookup", 2)
    _produce_with_timestamps(broker.bootstrap, topic, 0, [BASE + i * STEP for i in range(N)])
    # partition 1: non-monotonic timestamps (lookup returns the first offset whose ts >= target)
    p1 = [BASE + 1000, BASE + 500, BASE + 2000, BASE + 1500, BASE + 3000]
    _produce_with_timestamps(broker.bootstrap, topic, 1, p1)

    c = _consumer(broker.bootstrap)
    try:
        cases = [(BASE, 0), (BASE - 1, 0), (BASE + 50 * STEP, 50), (BASE + 50 * STEP + 3, 51),
                 (BASE + 49 * STEP + 9, 50), (BASE + (N - 1) * STEP, N - 1), (BASE + 149 * STEP, 149),
                 (BASE + 150 * STEP, 150), (BASE + 99 * STEP + 1, 100)]
        for ts, want in cases:
            (got,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert got.error is None
            assert got.offset == want, "timestamp %d: offset %d, want %d" % (ts, got.offset, want)
        # after the last timestamp: no such offset (-1, i.e. "end")
        (got,) = c.offsets_for_times([TopicPartition(topic, 0, BASE + N * STEP)], timeout=10)
        assert got.offset == -1, got

        for ts, want in [(BASE + 600, 0), (BASE + 400, 0), (BASE + 1000, 0), (BASE + 1001, 2), (BASE + 2500, 4),
                         (BASE, 0), (BASE + 3001, -1)]:
            (got,) = c.offsets_for_times([TopicPartition(topic, 1, ts)], timeout=10)
            assert got.offset == want, "p1 timestamp %d: offset %d, want %d" % (ts, got.offset, want)

        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
    finally:
        c.close()

    # Admin list_offsets: for_timestamp, earliest, latest, max_timestamp (KIP-734)
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    r = a.list_offsets({tp: OffsetSpec.for_timestamp(BASE + 77 * STEP)}, request_timeout=10)
    info = list(r.values())[0].result(timeout=10)
    assert info.offset == 77 and info.timestamp == BASE + 77 * STEP
    for spec, want in [(OffsetSpec.earliest(), 0), (OffsetSpec.latest(), len(p1))]:
        r = a.list_offsets({TopicPartition(topic, 1): spec}, request_timeout=10)
        assert list(r.values())[0].result(timeout=10).offset == want
    # partition 1's largest timestamp is BASE + 3000 at offset 4; partition 0's is the last record
    for part, want_offset, want_ts in [(1, 4, BASE + 3000), (0, N - 1, BASE + (N - 1) * STEP)]:
        r = a.list_offsets({TopicPartition(topic, part): OffsetSpec.max_timestamp()}, request_timeout=10)
        info = list(r.values())[0].result(timeout=10)
        assert (info.offset, info.timestamp) == (want_offset, want_ts), info

    # the record timestamps come back as produced (CreateTime)
    msgs = consume_partitions(broker.bootstrap, topic, [0], N, timeout=20)
    assert [m.timestamp() for m in msgs] == [(TIMESTAMP_CREATE_TIME, BASE + i * STEP) for i in range(N)]


def test_log_append_time_topic(broker):
    topic = create_topic(broker.bootstrap, "ts-append", 1,
                         config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    _produce_with_timestamps(broker.bootstrap, topic, 0, [BASE + i for i in range(20)])
    after = int(time.time() * 1000)
    msgs = consume_partitions(broker.bootstrap, topic, [0], 20, timeout=20)
    assert len(msgs) == 20
    for m in msgs:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME, m.timestamp()
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)
    c = _consumer(broker.bootstrap)
    try:
        (got,) = c.offsets_for_times([TopicPartition(topic, 0, before - 1000)], timeout=10)
        assert got.offset == 0
        (got,) = c.offsets_for_times([TopicPartition(topic, 0, BASE + 5)], timeout=10)
        assert got.offset == 0  # producer timestamps were replaced, all are >= BASE
    finally:
        c.close()
