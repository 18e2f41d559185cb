//! Replicated consumer groups in a cell of real processes, used through rdkafka: a group
//! commits on a 3-broker cell, the broker coordinating it is SIGKILLed, and a new member
//! of the group resumes exactly at the committed offsets on the new coordinator (nothing
//! before them re-read, nothing after them skipped); the offsets then survive a restart
//! of every broker.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::cell::Cell;
use common::clients::{admin, base_config};
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 300;
const GROUP: &str = "billing";

/// FindCoordinator v2 for `group` at `addr`: the coordinator's node id, or None when the
/// broker is unreachable or answers an error (no coordinator yet).
fn find_coordinator(addr: &str, group: &str) -> Option<i32> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::FindCoordinator as i16)
        .with_request_api_version(2)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("cell-groups-test")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).ok()?;
    FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .encode(&mut buf, 2)
        .ok()?;
    let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf);
    s.write_all(&framed).ok()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    let mut frame = BytesMut::from(&body[..]);
    ResponseHeader::decode(&mut frame, 0).ok()?;
    let r = FindCoordinatorResponse::decode(&mut frame, 2).ok()?;
    (r.error_code == 0).then_some(r.node_id.0)
}

/// The coordinator every running broker agrees on (other than `not`), within a minute.
fn agreed_coordinator(cell: &Cell, not: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answers: Vec<Option<i32>> = cell
            .brokers
            .iter()
            .filter(|b| b.is_running())
            .map(|b| find_coordinator(&b.addr, GROUP))
            .collect();
        if let Some(Some(first)) = answers.first() {
            let alive = cell
                .brokers
                .iter()
                .any(|b| b.is_running() && b.node_id == *first);
            if alive && Some(*first) != not && answers.iter().all(|a| *a == Some(*first)) {
                return *first;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed coordinator: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn group_consumer(bootstrap: &str) -> BaseConsumer {
    let c: BaseConsumer = base_config(bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    c
}

/// Poll until `want` records arrived (or 90 s passed); (partition, offset) of each.
fn consume(c: &BaseConsumer, want: usize) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while out.len() < want && Instant::now() < deadline {
        // Errors while brokers come and go are expected: the client recovers on its own.
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push((m.partition(), m.offset()));
        }
    }
    out
}

/// Commit the offset after the last record read per partition; returns what was committed.
fn commit(c: &BaseConsumer, read: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for (p, o) in read {
        let e = next.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &next {
        tpl.add_partition_offset(TOPIC, *p, Offset::Offset(*o))
            .expect("offset");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = c.commit(&tpl, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "commit failed: {e}");
        std::thread::sleep(Duration::from_millis(300));
    }
    next
}

/// The group's committed offsets as a fresh client reads them (retrying while the
/// coordinator moves or loads).
fn committed(bootstrap: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = base_config(bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(list) => {
                return list
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect()
            }
            Err(e) => assert!(Instant::now() < deadline, "OffsetFetch failed: {e}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

async fn produce_all(bootstrap: &str) -> BTreeMap<i32, i64> {
    let admin = admin(bootstrap);
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("create topics");
    for r in created {
        r.expect("topic created");
    }
    let p: FutureProducer = base_config(bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let mut ends = BTreeMap::new();
    for i in 0..RECORDS {
        let v = format!("v{i}");
        let d = p
            .send(
                FutureRecord::to(TOPIC).key(&v).payload(&v),
                Duration::from_secs(30),
            )
            .await
            .expect("acked");
        ends.insert(d.partition, d.offset + 1);
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_move_with_the_coordinator_and_survive_restarts() {
    let mut cell = Cell::start(1, 3, &[], &[]);
    cell.ready(3).await;
    let bootstrap = cell.bootstrap();
    let ends = produce_all(&bootstrap).await;
    assert_eq!(ends.values().sum::<i64>(), RECORDS as i64);

    // A first member reads part of the topic and commits.
    let first = group_consumer(&bootstrap);
    let read = consume(&first, RECORDS / 3);
    assert_eq!(read.len(), RECORDS / 3, "the first member read too little");
    let commits = commit(&first, &read);
    drop(first);
    assert_eq!(
        committed(&bootstrap),
        commits,
        "OffsetFetch returns the commit"
    );

    // SIGKILL the coordinator; every survivor agrees on a new one.
    let old = agreed_coordinator(&cell, None);
    let killed = Instant::now();
    cell.brokers
        .iter_mut()
        .find(|b| b.node_id == old)
        .expect("the coordinator is one of ours")
        .kill9();
    let new = agreed_coordinator(&cell, Some(old));
    println!(
        "coordinator moved from broker {old} to broker {new} in {} ms",
        killed.elapsed().as_millis()
    );

    // A new member resumes exactly at the committed offsets.
    let survivors = cell.bootstrap();
    let start: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, commits.get(&p).copied().unwrap_or(0)))
        .collect();
    let want: i64 = ends.iter().map(|(p, end)| end - start[p]).sum();
    let second = group_consumer(&survivors);
    let rest = consume(&second, want as usize);
    let unique: HashSet<_> = rest.iter().copied().collect();
    assert_eq!(unique.len(), rest.len(), "a record was read twice");
    for p in 0..PARTITIONS {
        let mut offsets: Vec<i64> = rest.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        offsets.sort();
        let expected: Vec<i64> = (start[&p]..ends[&p]).collect();
        assert_eq!(
            offsets,
            expected,
            "partition {p}: resumed from {:?}",
            offsets.first()
        );
    }
    let finals = commit(&second, &rest);
    drop(second);
    let mut expected = commits.clone();
    expected.extend(finals);
    assert_eq!(committed(&survivors), expected);

    // Every broker restarts (the killed one first); the commits are still there.
    for b in cell.brokers.iter_mut().filter(|b| !b.is_running()) {
        b.restart();
    }
    cell.wait_active(3).await;
    for b in cell.brokers.iter_mut() {
        b.stop();
    }
    for b in cell.brokers.iter_mut() {
        b.restart();
    }
    cell.wait_active(3).await;
    assert_eq!(
        committed(&cell.bootstrap()),
        expected,
        "offsets after a full restart"
    );
}
