"""confluent-kafka idempotent producer (enable.idempotence=true, acks=all).

1. Pipelined (max.in.flight=5) idempotent produce: counts, offsets and order exact.
2. The same across a graceful broker restart (SIGTERM, same port) in the middle of
   producing: the producer retries through the outage; every record is delivered
   exactly once, in order per partition.
3. Crash variant lives in test_crash_durability.py.
"""
import time
from collections import defaultdict

from confluent_kafka import Producer

from helpers import create_topic, consume_partitions

PARTITIONS = 4


def _producer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "max.in.flight.requests.per.connection": 5, "retries": 1000000,
            "retry.backoff.ms": 50, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "message.timeout.ms": 60000, "linger.ms": 2, "batch.num.messages": 200}
    conf.update(extra)
    return Producer(conf)


def _verify(bootstrap, topic, n, reports):
    assert len(reports) == n
    per_part = defaultdict(list)
    for i in range(n):
        part, off = reports[i]
        assert part == i % PARTITIONS
        per_part[part].append(off)
    for part, offs in per_part.items():
        assert offs == list(range(len(offs))), "partition %d: delivery offsets not contiguous" % part
    msgs = consume_partitions(bootstrap, topic, range(PARTITIONS), n, timeout=60, settle=1.0)
    values = [int(m.value()) for m in msgs]
    assert len(values) == n, "read %d records, produced %d (duplicates: %d)" % (
        len(values), n, len(values) - len(set(values)))
    assert sorted(values) == list(range(n))
    by_part = defaultdict(list)
    for m in msgs:
        by_part[m.partition()].append((m.offset(), int(m.value())))
    for part, recs in by_part.items():
        assert [o for o, _ in recs] == list(range(len(recs))), "partition %d offsets" % part
        assert [v for _, v in recs] == list(range(part, n, PARTITIONS)), "partition %d order" % part
        for o, v in recs:
            assert reports[v] == (part, o)


def _produce_range(p, topic, start, end, reports, errors, on_each=None):
    for i in range(start, end):
        while True:
            try:
                p.produce(topic, value=str(i).encode(), partition=i % PARTITIONS,
                          on_delivery=lambda err, msg, i=i: (errors.append((i, err)) if err
                                                             else reports.__setitem__(i, (msg.partition(), msg.offset()))))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if on_each:
            on_each(i)


def test_idempotent_pipelined_exact(broker):
    topic = create_topic(broker.bootstrap, "idem-plain", PARTITIONS)
    n = 40_000
    reports, errors = {}, []
    p = _producer(broker.bootstrap)
    _produce_range(p, topic, 0, n, reports, errors)
    assert p.flush(60) == 0
    assert not errors, errors[:5]
    _verify(broker.bootstrap, topic, n, reports)


def test_idempotent_through_graceful_restart(broker):
    topic = create_topic(broker.bootstrap, "idem-restart", PARTITIONS)
    n = 20_000
    reports, errors = {}, []
    p = _producer(broker.bootstrap)

    def maybe_restart(i):
        if i == n // 2:
            p.poll(0.2)          # some in flight, some acknowledged
            broker.restart(kill=False)

    _produce_range(p, topic, 0, n, reports, errors, on_each=maybe_restart)
    left = p.flush(60)
    assert left == 0, "%d records still queued" % left
    assert not errors, "delivery failed for %d records: %r" % (len(errors), errors[:5])
    assert broker.starts == 2
    _verify(broker.bootstrap, topic, n, reports)
