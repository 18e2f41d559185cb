//! The broker driven by a real client: rdkafka (bundled librdkafka), against a real broker
//! process on a port picked at run time.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::clients::*;
use common::BrokerProcess;
use rdkafka::admin::{AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_100k_records_per_codec_across_8_partitions() {
    let broker = BrokerProcess::start(&["--fsync", "always"]);
    const PER_CODEC: usize = 100_000;
    for codec in CODECS {
        let topic = format!("codec-{codec}");
        create_topic(&broker.addr, &topic, 8, &[]).await;
        let producer = base_producer(
            &broker.addr,
            &[
                ("compression.type", codec),
                ("linger.ms", "5"),
                ("acks", "all"),
                ("queue.buffering.max.messages", "200000"),
            ],
        );
        for i in 0..PER_CODEC {
            let key = format!("key-{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 64));
            // Two headers with the same key: legal in Kafka, must survive byte for byte.
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "h",
                    value: Some(&i.to_be_bytes()[..]),
                })
                .insert(Header {
                    key: "h",
                    value: Some("dup".as_bytes()),
                });
            let record = rdkafka::producer::BaseRecord::to(&topic)
                .key(&key)
                .payload(&value)
                .partition((i % 8) as i32)
                .headers(headers);
            let mut record = record;
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                    Err((e, _)) => panic!("send failed: {e}"),
                }
            }
        }
        producer.flush(Duration::from_secs(60)).expect("flush");

        let consumer = assigned_consumer(&broker.addr, &topic, 8, Offset::Beginning);
        let mut next_offset = [0i64; 8];
        let mut count = 0;
        let seen = consume_n(&consumer, PER_CODEC, Duration::from_secs(120), |m| {
            let p = m.partition() as usize;
            assert_eq!(
                m.offset(),
                next_offset[p],
                "{codec}: offsets contiguous in partition {p}"
            );
            next_offset[p] += 1;
            let key = std::str::from_utf8(m.key().unwrap()).unwrap();
            let i: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
            assert_eq!(
                i % 8,
                p,
                "{codec}: record {i} in the partition it was sent to"
            );
            assert_eq!(
                payload(m),
                format!("value-{i}-{}", "x".repeat(i % 64)).as_bytes()
            );
            let headers = m.headers().expect("headers");
            assert_eq!(
                headers.count(),
                2,
                "{codec}: both duplicate-key headers kept"
            );
            assert_eq!(headers.get(0).value, Some(&i.to_be_bytes()[..]));
            assert_eq!(
                (headers.get(1).key, headers.get(1).value),
                ("h", Some("dup".as_bytes()))
            );
            count += 1;
        });
        assert_eq!(seen, PER_CODEC, "{codec}: every record consumed");
        assert_eq!(count, PER_CODEC);
        assert_eq!(next_offset.iter().sum::<i64>(), PER_CODEC as i64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_record_once_in_order() {
    let broker = BrokerProcess::start(&[]);
    create_topic(&broker.addr, "idem", 4, &[]).await;
    let producer = future_producer(
        &broker.addr,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "2"),
        ],
    );
    const N: usize = 20_000;
    let mut deliveries = Vec::with_capacity(N);
    for i in 0..N {
        let value = i.to_string();
        deliveries.push(
            producer
                .send_result(
                    FutureRecord::<(), _>::to("idem")
                        .payload(&value)
                        .partition((i % 4) as i32),
                )
                .expect("enqueue"),
        );
    }
    let mut acked = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let delivery = d.await.expect("delivery future").expect("delivered");
        acked.insert((delivery.partition, delivery.offset), i);
    }
    assert_eq!(acked.len(), N, "every ack names a distinct offset");
    let consumer = assigned_consumer(&broker.addr, "idem", 4, Offset::Beginning);
    let mut last = [-1i64; 4];
    let seen = consume_n(&consumer, N, Duration::from_secs(60), |m| {
        let v: i64 = std::str::from_utf8(payload(m)).unwrap().parse().unwrap();
        let p = m.partition() as usize;
        assert!(v > last[p], "partition {p}: {v} after {}", last[p]);
        last[p] = v;
        assert_eq!(
            acked.get(&(m.partition(), m.offset())).copied(),
            Some(v as usize)
        );
    });
    assert_eq!(seen, N);
    // Nothing beyond the N records.
    assert!(
        consumer.poll(Duration::from_millis(500)).is_none(),
        "no duplicates after the last record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_describe_alter_partition_and_delete() {
    let broker = BrokerProcess::start(&[]);
    let admin = admin(&broker.addr);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    create_topic(
        &broker.addr,
        "adm",
        2,
        &[("retention.ms", "60000"), ("segment.bytes", "65536")],
    )
    .await;

    // Creating it again, or with a bad config, fails with the right error.
    let dup = rdkafka::admin::NewTopic::new("adm", 1, rdkafka::admin::TopicReplication::Fixed(1));
    let res = admin.create_topics([&dup], &opts).await.unwrap();
    assert_eq!(
        res[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::TopicAlreadyExists
    );
    let bad =
        rdkafka::admin::NewTopic::new("bad-config", 1, rdkafka::admin::TopicReplication::Fixed(1))
            .set("no.such.config", "1");
    let res = admin.create_topics([&bad], &opts).await.unwrap();
    assert_eq!(
        res[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidConfig
    );
    let bad_name =
        rdkafka::admin::NewTopic::new("bad/name", 1, rdkafka::admin::TopicReplication::Fixed(1));
    let res = admin.create_topics([&bad_name], &opts).await.unwrap();
    assert_eq!(
        res[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidTopic
    );

    // Describe shows the override and a default.
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let resource = described[0].as_ref().expect("describe adm");
    let entries = resource.entry_map();
    assert_eq!(entries["retention.ms"].value.as_deref(), Some("60000"));
    assert!(!entries["retention.ms"].is_default);
    assert!(entries["retention.bytes"].is_default);

    // Alter, then describe again.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("adm")).set("retention.ms", "120000");
    let res = admin.alter_configs([&alter], &opts).await.unwrap();
    assert!(res[0].is_ok(), "{:?}", res[0]);
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    assert_eq!(
        resource.get("retention.ms").unwrap().value.as_deref(),
        Some("120000")
    );
    let bad_alter =
        AlterConfig::new(ResourceSpecifier::Topic("adm")).set("cleanup.policy", "compact");
    // (rust-rdkafka's alter_configs does not surface per-resource errors, so check the effect:
    // AlterConfigs replaces all overrides, so had it been applied retention.ms would be reset.)
    let _ = admin.alter_configs([&bad_alter], &opts).await.unwrap();
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    assert_eq!(
        resource.get("cleanup.policy").unwrap().value.as_deref(),
        Some("delete")
    );
    assert_eq!(
        resource.get("retention.ms").unwrap().value.as_deref(),
        Some("120000")
    );

    // More partitions, visible in metadata.
    let res = admin
        .create_partitions([&NewPartitions::new("adm", 5)], &opts)
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{:?}", res[0]);
    let res = admin
        .create_partitions([&NewPartitions::new("adm", 3)], &opts)
        .await
        .unwrap();
    assert_eq!(
        res[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );
    let md = admin
        .inner()
        .fetch_metadata(Some("adm"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);

    // Delete; a second delete is an unknown topic.
    let res = admin.delete_topics(&["adm"], &opts).await.unwrap();
    assert!(res[0].is_ok());
    let res = admin.delete_topics(&["adm"], &opts).await.unwrap();
    assert_eq!(
        res[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap();
    assert!(md.topics().iter().all(|t| t.name() != "adm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_by_timestamp_and_delete_records() {
    let broker = BrokerProcess::start(&[]);
    create_topic(&broker.addr, "ts", 1, &[]).await;
    let producer = future_producer(&broker.addr, &[("linger.ms", "0")]);
    let base = 1_700_000_000_000i64;
    for i in 0..100i64 {
        let v = i.to_string();
        producer
            .send(
                FutureRecord::<(), _>::to("ts")
                    .payload(&v)
                    .partition(0)
                    .timestamp(base + i * 1000),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let consumer = assigned_consumer(&broker.addr, "ts", 1, Offset::Beginning);
    for (ts, want) in [
        (base, 0),
        (base + 42_000, 42),
        (base + 41_500, 42),
        (base + 99_000, 99),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("ts", 0, Offset::Offset(ts))
            .unwrap();
        let found = consumer
            .offsets_for_times(tpl, Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            found.find_partition("ts", 0).unwrap().offset(),
            Offset::Offset(want),
            "timestamp {ts}"
        );
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("ts", 0, Offset::Offset(base + 500_000))
        .unwrap();
    let found = consumer
        .offsets_for_times(tpl, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        found.find_partition("ts", 0).unwrap().offset(),
        Offset::End,
        "past the last record"
    );

    // DeleteRecords moves the log start; earlier offsets are gone.
    let admin = admin(&broker.addr);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("ts", 0, Offset::Offset(30))
        .unwrap();
    let res = admin
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        res.find_partition("ts", 0).unwrap().offset(),
        Offset::Offset(30)
    );
    let (low, high) = consumer
        .fetch_watermarks("ts", 0, Duration::from_secs(5))
        .unwrap();
    assert_eq!((low, high), (30, 100));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("ts", 0, Offset::Offset(500))
        .unwrap();
    let res = admin.delete_records(&tpl, &AdminOptions::new()).await;
    let failed = match res {
        Err(_) => true,
        Ok(tpl) => tpl.find_partition("ts", 0).unwrap().error().is_err(),
    };
    assert!(failed, "deleting beyond the high watermark is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments() {
    let broker = BrokerProcess::start(&["--retention-check-ms", "200"]);
    create_topic(
        &broker.addr,
        "ret",
        1,
        &[("segment.bytes", "4096"), ("retention.ms", "1000")],
    )
    .await;
    let producer = base_producer(
        &broker.addr,
        &[("linger.ms", "0"), ("batch.num.messages", "10")],
    );
    for i in 0..2000u32 {
        let v = format!("{i:0>100}");
        producer
            .send(
                rdkafka::producer::BaseRecord::<(), _>::to("ret")
                    .payload(&v)
                    .partition(0),
            )
            .unwrap();
        if i.is_multiple_of(100) {
            producer.flush(Duration::from_secs(10)).unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let consumer = assigned_consumer(&broker.addr, "ret", 1, Offset::Beginning);
    let (low, high) = consumer
        .fetch_watermarks("ret", 0, Duration::from_secs(5))
        .unwrap();
    assert_eq!(high, 2000);
    // Retention may already have run by the first look (a slow machine): wait until the
    // log start has moved past 0 at all.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut now_low = low;
    while now_low == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now_low = consumer
            .fetch_watermarks("ret", 0, Duration::from_secs(5))
            .unwrap()
            .0;
    }
    assert!(
        now_low > 0,
        "retention advanced the log start (first seen {low}, now {now_low})\n{}",
        broker.log_tail()
    );
    assert!(broker.log().contains("retention deleted segments"));
}
