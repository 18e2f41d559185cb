"""Small bounded helpers shared by the test modules."""
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic


def wait_until(fn, timeout=10.0, interval=0.1, what="condition"):
    """Poll fn() until it returns a truthy value; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last=%r)" % (timeout, what, last))


def admin(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    conf.update(extra)
    return AdminClient(conf)


def create_topic(bootstrap, name, partitions=1, config=None, timeout=15.0):
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                   config=config or {})], operation_timeout=timeout,
                         request_timeout=timeout)
    fs[name].result(timeout=timeout)
    # wait until metadata shows every partition
    def ready():
        md = a.list_topics(name, timeout=5)
        t = md.topics.get(name)
        return t is not None and t.error is None and len(t.partitions) == partitions
    wait_until(ready, timeout=timeout, what="metadata for %s" % name)
    return name


def consume_partitions(bootstrap, topic, partitions, expected, timeout=60.0, extra_conf=None,
                       settle=0.0):
    """Read `expected` messages from the beginning of the given partitions (no group).

    Returns the list of messages (errors raise). After reaching `expected`, keeps
    polling for `settle` seconds to catch any surplus (duplicates) and returns it too.
    """
    conf = {"bootstrap.servers": bootstrap, "group.id": "reader-unused",
            "enable.auto.commit": False, "enable.partition.eof": False,
            "fetch.wait.max.ms": 100, "socket.timeout.ms": 10000}
    conf.update(extra_conf or {})
    c = Consumer(conf)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                out.append(m)
        if settle:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                for m in c.consume(num_messages=1000, timeout=0.2):
                    if m.error():
                        raise KafkaException(m.error())
                    out.append(m)
        return out
    finally:
        c.close()


def watermarks(bootstrap, topic, partition, timeout=10.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm-unused",
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout, cached=False)
    finally:
        c.close()
