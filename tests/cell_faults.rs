//! Jepsen-style queue test on a cell of real processes: three controller voters and
//! three brokers. An idempotent acks=all producer writes unique values while a nemesis
//! SIGKILLs partition leaders, SIGSTOPs brokers and SIGKILLs the controller's Raft
//! leader; afterwards everything is healed and a consumer reads every partition back.
//!
//! The checker counts the queue anomalies: acknowledged writes that were lost, values
//! read twice, two values at one offset, and reads that went backwards. All must be
//! zero; the counts and the number of faults are printed.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::{base_config, create_topic_rf, idempotent_producer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "queue";
const PARTITIONS: i32 = 3;
const RUN: Duration = Duration::from_secs(40);

/// value -> (partition, offset) of every acknowledged write.
type Acked = Arc<Mutex<HashMap<String, (i32, i64)>>>;

fn leader_of(p: &FutureProducer, partition: i32) -> Option<i32> {
    let md = p
        .client()
        .fetch_metadata(Some(TOPIC), Duration::from_secs(3))
        .ok()?;
    let leader = md
        .topics()
        .first()?
        .partitions()
        .get(partition as usize)?
        .leader();
    (leader >= 0).then_some(leader)
}

fn isr_complete(p: &FutureProducer) -> bool {
    let Ok(md) = p
        .client()
        .fetch_metadata(Some(TOPIC), Duration::from_secs(3))
    else {
        return false;
    };
    md.topics().first().is_some_and(|t| {
        t.partitions().len() == PARTITIONS as usize
            && t.partitions().iter().all(|p| p.isr().len() == 3)
    })
}

async fn writer(
    p: FutureProducer,
    acked: Acked,
    failed: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut n = 0u64;
    let mut inflight = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let v = format!("{n}");
        n += 1;
        let (p, acked, failed) = (p.clone(), acked.clone(), failed.clone());
        inflight.push(tokio::spawn(async move {
            match p
                .send(
                    FutureRecord::to(TOPIC).key(&v).payload(&v),
                    Duration::from_secs(120),
                )
                .await
            {
                Ok(d) => {
                    acked.lock().unwrap().insert(v, (d.partition, d.offset));
                }
                // Indeterminate, not lost: the write may or may not have happened.
                Err(_) => *failed.lock().unwrap() += 1,
            }
        }));
        if inflight.len() > 2_000 {
            for t in inflight.drain(..1_000) {
                let _ = t.await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in inflight {
        let _ = t.await;
    }
    n
}

/// Read every partition from the beginning to its high watermark.
fn read_back(bootstrap: &str) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", "checker")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .expect("watermarks");
        ends.insert(p, high);
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut positions: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (0..PARTITIONS).any(|p| positions.get(&p).copied().unwrap_or(0) < ends[&p]) {
        assert!(
            Instant::now() < deadline,
            "could not read back to {ends:?}, at {positions:?}"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            positions.insert(m.partition(), m.offset() + 1);
            out.push((m.partition(), m.offset(), v));
        }
    }
    out
}

#[derive(Debug, Default)]
struct Anomalies {
    lost: usize,
    duplicated: usize,
    two_values_at_one_offset: usize,
    non_monotonic: usize,
}

fn check(acked: &HashMap<String, (i32, i64)>, read: &[(i32, i64, String)]) -> Anomalies {
    let mut a = Anomalies::default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut at: HashMap<(i32, i64), &str> = HashMap::new();
    let mut last: HashMap<i32, i64> = HashMap::new();
    for (p, o, v) in read {
        *seen.entry(v).or_default() += 1;
        if let Some(prev) = at.insert((*p, *o), v) {
            if prev != v {
                a.two_values_at_one_offset += 1;
            }
        }
        if last.get(p).is_some_and(|l| *o <= *l) {
            a.non_monotonic += 1;
        }
        last.insert(*p, *o);
    }
    a.duplicated = seen.values().filter(|&&n| n > 1).count();
    let mut claimed: HashSet<(i32, i64)> = HashSet::new();
    for (v, (p, o)) in acked {
        if !seen.contains_key(v.as_str()) {
            a.lost += 1;
        }
        match at.get(&(*p, *o)) {
            Some(r) if *r != v => a.two_values_at_one_offset += 1,
            _ => {}
        }
        if !claimed.insert((*p, *o)) {
            a.two_values_at_one_offset += 1;
        }
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_write_is_lost_under_kills_and_pauses() {
    let mut cell = Cell::start(3, 3, &[], &[]);
    cell.ready(3).await;
    let bootstrap = cell.bootstrap();
    create_topic_rf(&bootstrap, TOPIC, PARTITIONS, 3, &[]).await;
    let producer = idempotent_producer(
        &bootstrap,
        &[("linger.ms", "2"), ("message.timeout.ms", "120000")],
    );
    let acked: Acked = Arc::default();
    let failed = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(writer(
        producer.clone(),
        acked.clone(),
        failed.clone(),
        stop.clone(),
    ));

    let client = cell.client();
    let started = Instant::now();
    let mut faults = HashMap::<&str, u32>::new();
    let mut round = 0u32;
    while started.elapsed() < RUN {
        tokio::time::sleep(Duration::from_secs(3)).await;
        round += 1;
        match round % 3 {
            0 => {
                let Some(leader) = leader_of(&producer, (round as i32) % PARTITIONS) else {
                    continue;
                };
                let Some(b) = cell
                    .brokers
                    .iter_mut()
                    .find(|b| b.node_id == leader && b.is_running())
                else {
                    continue;
                };
                b.kill9();
                *faults.entry("sigkill leader broker").or_default() += 1;
                tokio::time::sleep(Duration::from_secs(3)).await;
                b.restart();
            }
            1 => {
                let Some(leader) = leader_of(&producer, (round as i32) % PARTITIONS) else {
                    continue;
                };
                let Some(b) = cell
                    .brokers
                    .iter()
                    .find(|b| b.node_id == leader && b.is_running())
                else {
                    continue;
                };
                b.pause(true);
                *faults.entry("sigstop leader broker").or_default() += 1;
                tokio::time::sleep(Duration::from_secs(4)).await;
                b.pause(false);
            }
            _ => {
                let Ok(q) = client.describe_quorum().await else {
                    continue;
                };
                let Some(v) = cell.voters.iter_mut().find(|v| v.id == q.leader_id) else {
                    continue;
                };
                v.kill9();
                *faults.entry("sigkill controller leader").or_default() += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
                v.spawn();
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let attempted = writer.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !isr_complete(&producer) {
        assert!(Instant::now() < deadline, "the ISR never healed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let read = read_back(&cell.bootstrap());
    let acked = acked.lock().unwrap().clone();
    let a = check(&acked, &read);
    let total_faults: u32 = faults.values().sum();
    println!(
        "QUEUE CHECK: attempted {attempted}, acknowledged {}, indeterminate {}, read {}; faults injected {total_faults} {faults:?}; anomalies {a:?}",
        acked.len(),
        failed.lock().unwrap(),
        read.len()
    );
    assert!(
        total_faults >= 6,
        "the nemesis injected too few faults: {faults:?}"
    );
    assert!(
        acked.len() > 1000,
        "too few writes were acknowledged to mean anything"
    );
    assert_eq!(a.lost, 0, "lost acknowledged writes");
    assert_eq!(a.duplicated, 0, "values read more than once");
    assert_eq!(a.two_values_at_one_offset, 0, "two values at one offset");
    assert_eq!(a.non_monotonic, 0, "non-monotonic reads");
}
