"""Crash durability: SIGKILL the broker 3 times while an acks=all producer writes.

The broker is restarted on the same data dir and port after each kill; the producer
(idempotent, acks=all, effectively unlimited retries) keeps producing and retries
through the outages. Afterwards every record whose delivery report said success is
readable exactly once, in order per partition, and nothing unknown appears.
"""
import time
from collections import defaultdict

from confluent_kafka import Producer

from helpers import create_topic, consume_partitions, watermarks

PARTITIONS = 4
N = 20_000
KILL_AT = (4_000, 9_000, 14_000)

BROKER_OPTS = {"fsync": "always"}


def test_acked_records_survive_sigkill(broker):
    topic = create_topic(broker.bootstrap, "crash", PARTITIONS)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                  "enable.idempotence": True, "retries": 1000000,
                  "max.in.flight.requests.per.connection": 5,
                  "retry.backoff.ms": 50, "reconnect.backoff.ms": 50,
                  "reconnect.backoff.max.ms": 500, "message.timeout.ms": 60000,
                  "linger.ms": 2, "batch.num.messages": 100})
    acked, failed = {}, {}

    def on_delivery(i, err, msg):
        if err is None:
            acked[i] = (msg.partition(), msg.offset())
        else:
            failed[i] = err

    kills = 0
    for i in range(N):
        if i in KILL_AT:
            p.poll(0.05)             # let some requests be in flight
            broker.restart(kill=True)
            kills += 1
        while True:
            try:
                p.produce(topic, value=b"%08d" % i, partition=i % PARTITIONS,
                          on_delivery=lambda err, msg, i=i: on_delivery(i, err, msg))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(90)
    assert kills == 3 and broker.starts == 4
    assert left == 0, "%d records never got a delivery report" % left
    print("acked %d, failed %d" % (len(acked), len(failed)))
    assert acked, "nothing acknowledged"

    # one more crash after the last acknowledgement: acked data must already be durable
    broker.restart(kill=True)

    highs = {part: watermarks(broker.bootstrap, topic, part)[1] for part in range(PARTITIONS)}
    total = sum(highs.values())
    msgs = consume_partitions(broker.bootstrap, topic, range(PARTITIONS), total,
                              timeout=60, settle=1.0)
    assert len(msgs) == total, "high watermarks say %d records, read %d" % (total, len(msgs))

    by_part = defaultdict(list)
    for m in msgs:
        by_part[m.partition()].append((m.offset(), int(m.value())))
    seen = defaultdict(int)
    for part, recs in by_part.items():
        offs = [o for o, _ in recs]
        assert offs == list(range(len(offs))), "partition %d offsets not contiguous" % part
        vals = [v for _, v in recs]
        assert all(v % PARTITIONS == part for v in vals), "record in wrong partition %d" % part
        assert vals == sorted(vals), "partition %d out of order: %r" % (
            part, [(a, b) for a, b in zip(vals, vals[1:]) if b <= a][:5])
        for o, v in recs:
            seen[v] += 1
            if v in acked:
                assert acked[v] == (part, o), "record %d acked at %r but found at p%d@%d" % (v, acked[v], part, o)
    dups = {v: c for v, c in seen.items() if c > 1}
    assert not dups, "%d records duplicated, e.g. %r" % (len(dups), sorted(dups.items())[:5])
    lost = sorted(set(acked) - set(seen))
    assert not lost, "%d acknowledged records lost, e.g. %r" % (len(lost), lost[:10])
    unknown = sorted(set(seen) - set(range(N)))
    assert not unknown
    # with unlimited retries and a 60 s message timeout nothing should have failed
    assert not failed, "%d deliveries failed, e.g. %r" % (len(failed), sorted(failed.items())[:5])
