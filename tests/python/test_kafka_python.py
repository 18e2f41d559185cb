"""kafka-python 3.x: producer (acks=all, default idempotence/retries), group consumer, admin."""
import time
from collections import defaultdict

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from helpers import wait_until

BASE_TS = 1_650_000_000_000
N = 3000
PARTITIONS = 3


def _admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000,
                            client_id="kp-admin")


def _topic_names(admin):
    return set(admin.list_topics())


def test_kafka_python_end_to_end(broker):
    admin = _admin(broker)
    topic = "kp-topic"
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1,
                                      topic_configs={"retention.ms": "86400000"})], timeout_ms=10000)
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], timeout_ms=10000)
        wait_until(lambda: topic in _topic_names(admin), what="topic listed")
        desc = admin.describe_topics([topic])
        assert len(desc) == 1 and desc[0]["name"] == topic and desc[0]["error_code"] == 0
        assert sorted(p["partition_index"] for p in desc[0]["partitions"]) == list(range(PARTITIONS))
        assert all(p["leader_id"] == 1 and p["replica_nodes"] == [1] for p in desc[0]["partitions"])

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                 compression_type="gzip", linger_ms=5, request_timeout_ms=10000)
        assert producer.config["enable_idempotence"] is True  # kafka-python 3 default
        futures = []
        for i in range(N):
            futures.append(producer.send(topic, key=b"k%d" % i, value=b"v%d" % i,
                                         partition=i % PARTITIONS, timestamp_ms=BASE_TS + i,
                                         headers=[("n", b"%d" % i), ("dup", b"1"), ("dup", b"2")]))
        producer.flush(timeout=30)
        metas = [f.get(timeout=10) for f in futures]
        producer.close(timeout=5)
        per_part = defaultdict(list)
        for i, md in enumerate(metas):
            assert md.topic == topic and md.partition == i % PARTITIONS
            per_part[md.partition].append(md.offset)
        for part, offs in per_part.items():
            assert offs == list(range(N // PARTITIONS)), "partition %d offsets" % part

        group = "kp-group"
        consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 session_timeout_ms=6000, heartbeat_interval_ms=500,
                                 fetch_max_wait_ms=100, request_timeout_ms=10000)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < N and time.monotonic() < deadline:
            for tp, recs in consumer.poll(timeout_ms=500, max_records=1000).items():
                got.extend(recs)
        consumer.commit()
        assert len(got) == N, "consumed %d of %d" % (len(got), N)
        seen = defaultdict(list)
        for r in got:
            i = int(r.value[1:])
            assert r.key == b"k%d" % i
            assert r.headers == [("n", b"%d" % i), ("dup", b"1"), ("dup", b"2")]
            assert r.timestamp == BASE_TS + i
            assert r.partition == i % PARTITIONS
            seen[r.partition].append((r.offset, i))
        for part in range(PARTITIONS):
            assert [o for o, _ in seen[part]] == list(range(N // PARTITIONS))
            assert [i for _, i in seen[part]] == list(range(part, N, PARTITIONS))

        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps) == {tp: N // PARTITIONS for tp in tps}
        for tp in tps:
            assert consumer.committed(tp) == N // PARTITIONS
        # record i is at offset i // PARTITIONS in partition i % PARTITIONS, timestamp BASE_TS + i
        ot = consumer.offsets_for_times({tps[0]: BASE_TS + 300, tps[1]: BASE_TS + 301,
                                         tps[2]: BASE_TS + 10 * N})
        assert ot[tps[0]].offset == 100 and ot[tps[0]].timestamp == BASE_TS + 300
        assert ot[tps[1]].offset == 100 and ot[tps[1]].timestamp == BASE_TS + 301
        assert ot[tps[2]] is None
        ot = consumer.offsets_for_times({tps[2]: BASE_TS + 3})  # 3 is in p0; p2 next is 5 @ 1
        assert ot[tps[2]].offset == 1 and ot[tps[2]].timestamp == BASE_TS + 5

        listed = admin.list_groups()
        mine = [g for g in listed if g["group_id"] == group]
        assert len(mine) == 1 and mine[0]["protocol_type"] == "consumer", listed
        assert mine[0]["group_state"] == "Stable", listed
        consumer.close()

        # a second group member starting later reads nothing: everything was committed
        c2 = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                           auto_offset_reset="earliest", enable_auto_commit=False,
                           session_timeout_ms=6000, heartbeat_interval_ms=500, fetch_max_wait_ms=100)
        extra = []
        end = time.monotonic() + 4
        while time.monotonic() < end:
            for recs in c2.poll(timeout_ms=300).values():
                extra.extend(recs)
        assigned = c2.assignment()
        c2.close()
        assert len(assigned) == PARTITIONS
        assert not extra, "re-read %d committed records" % len(extra)

        admin.delete_topics([topic], timeout_ms=10000)
        wait_until(lambda: topic not in _topic_names(admin), what="topic deleted")
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([topic], timeout_ms=10000)
    finally:
        admin.close()
