"""confluent-kafka edge cases: size limits, out-of-range fetches, long polling, commits across a crash."""
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from helpers import create_topic, consume_partitions, watermarks


def _deliver(bootstrap, topic, value, partition=0, **conf):
    c = {"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 10000}
    c.update(conf)
    p = Producer(c)
    res = []
    p.produce(topic, value=value, partition=partition, on_delivery=lambda e, m: res.append((e, m.offset())))
    assert p.flush(15) == 0
    assert len(res) == 1
    return res[0]


def test_max_message_bytes_enforced(broker):
    topic = create_topic(broker.bootstrap, "edge-maxbytes", 1, config={"max.message.bytes": "2048"})
    err, off = _deliver(broker.bootstrap, topic, b"s" * 500)
    assert err is None and off == 0
    err, _ = _deliver(broker.bootstrap, topic, bytes(range(256)) * 40)  # ~10 KiB batch, uncompressed
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert watermarks(broker.bootstrap, topic, 0) == (0, 1)
    err, off = _deliver(broker.bootstrap, topic, b"t" * 500)
    assert err is None and off == 1


def test_unknown_partition_refused(broker):
    topic = create_topic(broker.bootstrap, "edge-parts", 2)
    err, _ = _deliver(broker.bootstrap, topic, b"x", partition=5)
    assert err is not None and err.code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART), err


def test_out_of_range_offset_reset(broker):
    topic = create_topic(broker.bootstrap, "edge-range", 1)
    for i in range(5):
        _deliver(broker.bootstrap, topic, b"r%d" % i)
    base = {"bootstrap.servers": broker.bootstrap, "group.id": "edge-unused",
            "enable.auto.commit": False, "fetch.wait.max.ms": 100}
    # auto.offset.reset=error surfaces the out-of-range fetch to the application
    c = Consumer(dict(base, **{"auto.offset.reset": "error"}))
    try:
        c.assign([TopicPartition(topic, 0, 50)])
        errs = []
        deadline = time.monotonic() + 10
        while not errs and time.monotonic() < deadline:
            for m in c.consume(10, 0.2):
                assert m.error() is not None, "got a record at offset %d" % m.offset()
                errs.append(m.error())
        assert errs and errs[0].code() == KafkaError._AUTO_OFFSET_RESET, errs
    finally:
        c.close()
    # auto.offset.reset=earliest from beyond the end restarts at 0
    c = Consumer(dict(base, **{"auto.offset.reset": "earliest"}))
    try:
        c.assign([TopicPartition(topic, 0, 50)])
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            got += [m for m in c.consume(10, 0.2) if not m.error()]
        assert [m.offset() for m in got] == [0, 1, 2, 3, 4]
        assert got[0].value() == b"r0"
    finally:
        c.close()


def test_fetch_long_poll_wakes_on_produce(broker):
    topic = create_topic(broker.bootstrap, "edge-longpoll", 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "edge-unused",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 5000,
                  "fetch.error.backoff.ms": 10})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.consume(10, 1.0) == []      # consumer is now parked in a long-poll Fetch
        t0 = time.monotonic()
        err, off = _deliver(broker.bootstrap, topic, b"wake")
        assert err is None
        got = []
        while not got and time.monotonic() - t0 < 8:
            got = [m for m in c.consume(10, 0.1) if not m.error()]
        waited = time.monotonic() - t0
        assert got and got[0].value() == b"wake"
        assert waited < 2.5, "record arrived after %.2fs: the 5 s long poll was not woken" % waited
    finally:
        c.close()


def test_committed_offsets_survive_sigkill(broker):
    topic = create_topic(broker.bootstrap, "edge-commit", 3)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "edge-commit-group",
                  "enable.auto.commit": False})
    try:
        res = c.commit(offsets=[TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)],
                       asynchronous=False)
        assert all(tp.error is None for tp in res)
    finally:
        c.close()
    # commit positions beyond 0 after producing, then crash right after the acknowledgement
    for i in range(30):
        _deliver(broker.bootstrap, topic, b"%d" % i, partition=i % 3)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "edge-commit-group",
                  "enable.auto.commit": False})
    res = c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 10),
                            TopicPartition(topic, 2, 3)], asynchronous=False)
    assert all(tp.error is None for tp in res), res
    broker.restart(kill=True)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert [(tp.partition, tp.offset) for tp in got] == [(0, 7), (1, 10), (2, 3)]
    finally:
        c.close()
    msgs = consume_partitions(broker.bootstrap, topic, range(3), 30, timeout=20)
    assert sorted(int(m.value()) for m in msgs) == list(range(30))
