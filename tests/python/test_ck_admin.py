"""confluent_kafka.admin.AdminClient against the broker."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

from helpers import admin, create_topic, consume_partitions, wait_until, watermarks

T = 15  # seconds, every admin call


def _err(fut):
    """The KafkaError a failed future carries (asserts it failed)."""
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=T)
    return ei.value.args[0]


def _produce(bootstrap, topic, n, partition=0):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=partition)
    assert p.flush(20) == 0


def _describe(a, name):
    res = ConfigResource(ResourceType.TOPIC, name)
    return a.describe_configs([res], request_timeout=T)[res].result(timeout=T)


def test_create_describe_alter_delete_topic(broker):
    a = admin(broker.bootstrap)
    name = "adm-topic"
    fs = a.create_topics([NewTopic(name, num_partitions=3, replication_factor=1,
                                   config={"retention.ms": "3600000", "segment.bytes": "1048576",
                                           "cleanup.policy": "delete"})],
                         request_timeout=T)
    assert fs[name].result(timeout=T) is None

    md = wait_until(lambda: (a.list_topics(timeout=T).topics.get(name)), what="topic in metadata")
    assert md.error is None and sorted(md.partitions) == [0, 1, 2]
    for pm in md.partitions.values():
        assert pm.leader == 1 and list(pm.replicas) == [1] and list(pm.isrs) == [1]

    # duplicate -> TOPIC_ALREADY_EXISTS
    dup = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], request_timeout=T)
    assert _err(dup[name]).code() == KafkaError.TOPIC_ALREADY_EXISTS

    # invalid config name and invalid value -> INVALID_CONFIG, topic not created
    bad = a.create_topics([NewTopic("adm-bad1", 1, 1, config={"no.such.config": "1"}),
                           NewTopic("adm-bad2", 1, 1, config={"segment.bytes": "10"}),
                           NewTopic("adm-bad3", 1, 1, config={"cleanup.policy": "compact"})],
                          request_timeout=T)
    for t in ("adm-bad1", "adm-bad2", "adm-bad3"):
        assert _err(bad[t]).code() == KafkaError.INVALID_CONFIG, t
    names = set(a.list_topics(timeout=T).topics)
    assert not {"adm-bad1", "adm-bad2", "adm-bad3"} & names

    # replication factor other than 1 is refused
    rf = a.create_topics([NewTopic("adm-rf3", 1, 3)], request_timeout=T)
    assert _err(rf["adm-rf3"]).code() == KafkaError.INVALID_REPLICATION_FACTOR

    # describe_configs shows what we set, as topic-level (dynamic) config
    cfg = _describe(a, name)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["segment.bytes"].value == "1048576"
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert not cfg["retention.ms"].is_default

    # incremental_alter_configs: SET one, DELETE another (back to default)
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=T)[res].result(timeout=T)
    cfg = _describe(a, name)
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["max.message.bytes"].value == "2000000"
    assert cfg["segment.bytes"].value != "1048576" and cfg["segment.bytes"].is_default

    # an invalid incremental alter is refused and changes nothing
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("bogus.config", "1", incremental_operation=AlterConfigOpType.SET)])
    assert _err(a.incremental_alter_configs([res], request_timeout=T)[res]).code() == KafkaError.INVALID_CONFIG
    assert _describe(a, name)["retention.ms"].value == "7200000"

    # create_partitions 3 -> 5; shrinking is refused
    a.create_partitions([NewPartitions(name, 5)], request_timeout=T)[name].result(timeout=T)
    wait_until(lambda: len(a.list_topics(name, timeout=T).topics[name].partitions) == 5,
               what="5 partitions")
    _produce(broker.bootstrap, name, 3, partition=4)
    assert watermarks(broker.bootstrap, name, 4) == (0, 3)
    shrink = a.create_partitions([NewPartitions(name, 2)], request_timeout=T)
    assert _err(shrink[name]).code() == KafkaError.INVALID_PARTITIONS

    # delete_topics; deleting again -> UNKNOWN_TOPIC_OR_PART
    a.delete_topics([name], request_timeout=T)[name].result(timeout=T)
    wait_until(lambda: name not in a.list_topics(timeout=T).topics, what="topic gone")
    again = a.delete_topics([name], request_timeout=T)
    assert _err(again[name]).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_cluster_and_list_topics(broker):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, "adm-listed", 2)
    desc = a.describe_cluster(request_timeout=T).result(timeout=T)
    assert desc.cluster_id
    assert [n.id for n in desc.nodes] == [1]
    assert desc.nodes[0].host == "127.0.0.1" and desc.nodes[0].port == broker.port
    assert desc.controller is not None and desc.controller.id == 1
    md = a.list_topics(timeout=T)
    assert md.cluster_id == desc.cluster_id
    assert list(md.brokers) == [1] and md.brokers[1].port == broker.port
    assert "adm-listed" in md.topics and len(md.topics["adm-listed"].partitions) == 2


def test_consumer_groups_list_describe_delete(broker):
    a = admin(broker.bootstrap)
    topic = create_topic(broker.bootstrap, "adm-groups", 2)
    _produce(broker.bootstrap, topic, 10, partition=0)
    group = "adm-group-1"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "adm-c",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            got += [m for m in c.consume(10, 0.2) if not m.error()]
        assert len(got) == 10
        c.commit(asynchronous=False)

        listed = a.list_consumer_groups(request_timeout=T).result(timeout=T)
        assert not listed.errors
        ids = {g.group_id: g for g in listed.valid}
        assert group in ids
        assert str(ids[group].state).endswith("STABLE")

        d = a.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
        assert d.group_id == group
        assert str(d.state).endswith("STABLE")
        assert d.partition_assignor == "range"
        assert len(d.members) == 1 and d.members[0].client_id == "adm-c"
        assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions) == [0, 1]

        # a group with members cannot be deleted
        busy = a.delete_consumer_groups([group], request_timeout=T)
        assert _err(busy[group]).code() == KafkaError.NON_EMPTY_GROUP
    finally:
        c.close()

    d = a.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
    assert str(d.state).endswith("EMPTY") and not d.members
    a.delete_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
    listed = a.list_consumer_groups(request_timeout=T).result(timeout=T)
    assert group not in {g.group_id for g in listed.valid}
    # committed offsets went with it
    c2 = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = c2.committed([TopicPartition(topic, 0)], timeout=T)
        assert committed[0].offset < 0, committed
    finally:
        c2.close()
    missing = a.delete_consumer_groups([group], request_timeout=T)
    assert _err(missing[group]).code() in (KafkaError.GROUP_ID_NOT_FOUND,)


def test_delete_records(broker):
    a = admin(broker.bootstrap)
    topic = create_topic(broker.bootstrap, "adm-delrec", 2)
    _produce(broker.bootstrap, topic, 100, partition=0)
    _produce(broker.bootstrap, topic, 10, partition=1)
    tp0 = TopicPartition(topic, 0, 37)
    res = a.delete_records([tp0], request_timeout=T)
    (k, fut), = res.items()
    deleted = fut.result(timeout=T)
    assert deleted.low_watermark == 37
    assert watermarks(broker.bootstrap, topic, 0) == (37, 100)
    assert watermarks(broker.bootstrap, topic, 1) == (0, 10)

    lo = a.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()}, request_timeout=T)
    assert list(lo.values())[0].result(timeout=T).offset == 37
    hi = a.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()}, request_timeout=T)
    assert list(hi.values())[0].result(timeout=T).offset == 100

    # reading from the beginning starts at the new log start
    msgs = consume_partitions(broker.bootstrap, topic, [0], 63, timeout=20, settle=0.5)
    assert [m.offset() for m in msgs] == list(range(37, 100))
    assert msgs[0].value() == b"v37"

    # deleting before everything (offset -1 = high watermark) empties the partition
    res = a.delete_records([TopicPartition(topic, 1, -1)], request_timeout=T)
    assert list(res.values())[0].result(timeout=T).low_watermark == 10
    assert watermarks(broker.bootstrap, topic, 1) == (10, 10)

    # beyond the high watermark -> OFFSET_OUT_OF_RANGE
    res = a.delete_records([TopicPartition(topic, 0, 1000)], request_timeout=T)
    assert _err(list(res.values())[0]).code() == KafkaError.OFFSET_OUT_OF_RANGE
    assert watermarks(broker.bootstrap, topic, 0) == (37, 100)

    # survives a restart
    broker.restart(kill=False)
    assert watermarks(broker.bootstrap, topic, 0) == (37, 100)
