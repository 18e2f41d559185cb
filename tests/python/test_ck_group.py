"""confluent-kafka consumer group: 2 consumers, a 3rd joins, one leaves, then a final one.

Auto-commit is off; each consumer commits synchronously after processing each batch
(before it polls again), so no record is ever processed-but-uncommitted at a rebalance:
the group as a whole must consume every record exactly once, committed offsets must
never regress, and a last consumer of the group resumes exactly at the committed offsets.
"""
import time
from collections import defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

from helpers import create_topic

PARTITIONS = 6
GROUP = "group-of-three"


def _consumer(bootstrap, name):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "client.id": name,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                     "max.poll.interval.ms": 30000, "fetch.wait.max.ms": 100,
                     "partition.assignment.strategy": "range",
                     "enable.partition.eof": False})


class Tracker:
    def __init__(self, topic):
        self.topic = topic
        self.processed = []             # (value, partition, offset, consumer)
        self.next_offset = {}           # partition -> next expected offset (contiguity)
        self.committed = defaultdict(lambda: -1)   # highest offset we committed per partition
        self.commit_log = []
        self.problems = []

    def process_batch(self, name, consumer, msgs):
        highest = {}
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            p, o = m.partition(), m.offset()
            self.processed.append((m.value(), p, o, name))
            expected = self.next_offset.get(p, 0)
            if o != expected:
                self.problems.append("%s got p%d@%d, expected @%d" % (name, p, o, expected))
            self.next_offset[p] = o + 1
            highest[p] = o + 1
        if not highest:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(highest.items())]
        result = consumer.commit(offsets=offsets, asynchronous=False)
        for tp in result:
            if tp.error is not None:
                self.problems.append("%s commit p%d@%d failed: %s" % (name, tp.partition, tp.offset, tp.error))
                continue
            if tp.offset <= self.committed[tp.partition]:
                self.problems.append("%s committed p%d@%d after @%d (regression)"
                                     % (name, tp.partition, tp.offset, self.committed[tp.partition]))
            self.committed[tp.partition] = max(self.committed[tp.partition], tp.offset)
            self.commit_log.append((name, tp.partition, tp.offset))


def _produce(bootstrap, topic, start, count):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(start, start + count):
        p.produce(topic, key=str(i).encode(), value=("rec-%06d" % i).encode(),
                  partition=i % PARTITIONS, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0
    assert not errors, errors[:3]
    return list(range(start, start + count))


def _check_committed_not_regressed(consumer, tracker, topic):
    """OffsetFetch via the group must show exactly what we last committed."""
    got = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    for tp in got:
        assert tp.error is None, tp.error
        want = tracker.committed[tp.partition]
        if want >= 0:
            assert tp.offset == want, "OffsetFetch p%d = %d, last commit %d" % (tp.partition, tp.offset, want)


def test_group_rebalance_exactly_once(broker):
    topic = create_topic(broker.bootstrap, "group-topic", PARTITIONS)
    tr = Tracker(topic)
    produced = _produce(broker.bootstrap, topic, 0, 3000)

    consumers = {}
    for name in ("c1", "c2"):
        consumers[name] = _consumer(broker.bootstrap, name)
        consumers[name].subscribe([topic])

    stage = 0
    assignments_seen = defaultdict(list)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for name, c in list(consumers.items()):
            # small batches so that rebalances happen while records are still pending
            msgs = c.consume(num_messages=25, timeout=0.05)
            tr.process_batch(name, c, msgs)
            a = sorted(tp.partition for tp in c.assignment())
            if not assignments_seen[name] or assignments_seen[name][-1] != a:
                assignments_seen[name].append(a)
        n = len(tr.processed)
        if stage == 0 and n >= 1000:
            consumers["c3"] = _consumer(broker.bootstrap, "c3")
            consumers["c3"].subscribe([topic])
            stage = 1
        elif stage == 1 and consumers["c3"].assignment():
            produced += _produce(broker.bootstrap, topic, 3000, 3000)
            stage = 2
        elif stage == 2 and n >= 4500:
            _check_committed_not_regressed(consumers["c1"], tr, topic)
            consumers.pop("c1").close()
            stage = 3
        elif stage == 3 and all(c.assignment() for c in consumers.values()) \
                and sum(len(c.assignment()) for c in consumers.values()) == PARTITIONS:
            # c2 and c3 now share all partitions
            produced += _produce(broker.bootstrap, topic, 6000, 1500)
            stage = 4
        elif stage == 4 and n >= len(produced):
            break
    assert not tr.problems, "\n".join(tr.problems[:20])
    assert stage == 4 and len(tr.processed) == len(produced), \
        "stage %d, processed %d of %d; assignments %r" % (stage, len(tr.processed), len(produced),
                                                        dict(assignments_seen))
    # c3 really took part, and after c1 left the survivors covered every partition
    assert any(assignments_seen["c3"]), "c3 never got partitions: %r" % dict(assignments_seen)
    print("assignments seen:", dict(assignments_seen))
    # eager protocol: c2 went through three generations (2 members, 3 members, 2 members)
    assert len([a for a in assignments_seen["c2"] if a]) >= 3, "c2 was not rebalanced twice: %r" % dict(assignments_seen)
    _check_committed_not_regressed(consumers["c2"], tr, topic)
    for c in consumers.values():
        c.close()

    # More records while nobody is in the group; a final member resumes from commits.
    produced += _produce(broker.bootstrap, topic, 7500, 500)
    final = _consumer(broker.bootstrap, "c4")
    final.subscribe([topic])
    try:
        end = time.monotonic() + 60
        while len(tr.processed) < len(produced) and time.monotonic() < end:
            tr.process_batch("c4", final, final.consume(num_messages=200, timeout=0.2))
        # linger to catch anything delivered twice
        settle = time.monotonic() + 1.5
        while time.monotonic() < settle:
            tr.process_batch("c4", final, final.consume(num_messages=200, timeout=0.2))
        _check_committed_not_regressed(final, tr, topic)
    finally:
        final.close()
    assert not tr.problems, "\n".join(tr.problems[:20])
    c4_first = {}
    for v, p, o, name in tr.processed:
        if name == "c4" and p not in c4_first:
            c4_first[p] = o
    assert len(c4_first) == PARTITIONS, "c4 did not read every partition: %r" % c4_first

    values = [v for v, _, _, _ in tr.processed]
    counts = defaultdict(int)
    for v in values:
        counts[v] += 1
    dups = {v: n for v, n in counts.items() if n > 1}
    expected = {("rec-%06d" % i).encode() for i in produced}
    missing = expected - set(counts)
    assert not dups, "%d duplicated records, e.g. %r" % (len(dups), list(dups.items())[:5])
    assert not missing, "%d lost records, e.g. %r" % (len(missing), sorted(missing)[:5])
    assert set(counts) == expected
    # commits end at the log end of each partition
    per_part = defaultdict(int)
    for i in produced:
        per_part[i % PARTITIONS] += 1
    assert dict(tr.committed) == dict(per_part)
