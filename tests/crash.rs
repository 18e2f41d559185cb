//! Crash durability: a producer with acks=all (idempotent) writes numbered records while
//! the broker process is SIGKILLed and restarted several times. Afterwards every
//! acknowledged record must be readable exactly once, at the offset it was acknowledged
//! at, in order. The checker counts Jepsen's queue anomalies: lost acknowledged writes,
//! duplicates, two values at one offset, and non-monotonic order.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::clients::*;
use common::BrokerProcess;
use rdkafka::client::ClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

const PARTITIONS: i32 = 4;
const KILLS: usize = 4;

/// Records every acknowledgement: value -> (partition, offset).
#[derive(Clone, Default)]
struct Acks(Arc<Mutex<HashMap<u64, (i32, i64)>>>, Arc<Mutex<u64>>);

impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = Box<u64>;
    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<u64>) {
        match result {
            Ok(m) => {
                self.0
                    .lock()
                    .unwrap()
                    .insert(*value, (m.partition(), m.offset()));
            }
            Err(_) => *self.1.lock().unwrap() += 1,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_repeated_sigkill() {
    let mut broker = BrokerProcess::start(&["--fsync", "always"]);
    create_topic(
        &broker.addr,
        "crash",
        PARTITIONS,
        &[("segment.bytes", "262144")],
    )
    .await;
    let acks = Acks::default();
    let producer: BaseProducer<Acks> = base_config(&broker.addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "120000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(acks.clone())
        .expect("producer");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i: u64 = 0;
            // Bounded: stops when told, or after 200k records whatever happens.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 200_000 {
                let value = i.to_string();
                let partition = (i % PARTITIONS as u64) as i32;
                let mut record = BaseRecord::<(), _, _>::with_opaque_to("crash", Box::new(i))
                    .payload(&value)
                    .partition(partition);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((e, r))
                            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                        {
                            producer.poll(Duration::from_millis(5));
                            record = r;
                        }
                        Err((e, _)) => panic!("send failed: {e}"),
                    }
                }
                i += 1;
                sent.store(i, std::sync::atomic::Ordering::Relaxed);
                producer.poll(Duration::ZERO);
                if i.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            producer
                .flush(Duration::from_secs(120))
                .expect("flush after the faults");
        })
    };

    let mut faults = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        broker.kill9();
        faults += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.restart();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::task::spawn_blocking(move || writer.join().expect("writer thread"))
        .await
        .unwrap();

    let acked = acks.0.lock().unwrap().clone();
    let failed = *acks.1.lock().unwrap();
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);

    // Read everything back.
    let consumer = assigned_consumer(&broker.addr, "crash", PARTITIONS, Offset::Beginning);
    let mut total = 0i64;
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks("crash", p, Duration::from_secs(10))
            .unwrap();
        assert_eq!(low, 0);
        total += high;
    }
    let mut at_offset: BTreeMap<(i32, i64), u64> = BTreeMap::new();
    let mut seen_values: HashMap<u64, usize> = HashMap::new();
    let mut two_values_one_offset = 0;
    let mut non_monotonic = 0;
    let mut last = vec![None::<u64>; PARTITIONS as usize];
    let read = consume_n(&consumer, total as usize, Duration::from_secs(60), |m| {
        let v: u64 = std::str::from_utf8(payload(m)).unwrap().parse().unwrap();
        if at_offset
            .insert((m.partition(), m.offset()), v)
            .is_some_and(|old| old != v)
        {
            two_values_one_offset += 1;
        }
        *seen_values.entry(v).or_default() += 1;
        let p = m.partition() as usize;
        if last[p].is_some_and(|prev| v <= prev) {
            non_monotonic += 1;
        }
        last[p] = Some(v);
    });
    let lost: Vec<_> = acked
        .keys()
        .filter(|v| !seen_values.contains_key(v))
        .copied()
        .collect();
    let duplicates = seen_values.values().filter(|&&n| n > 1).count();
    let misplaced = acked
        .iter()
        .filter(|(v, at)| at_offset.get(at).is_some_and(|found| found != *v))
        .count();
    println!(
        "crash test: faults={faults} sent={sent} acked={} delivery_failures={failed} read={read} \
         lost={} duplicates={duplicates} two_values_one_offset={two_values_one_offset} \
         non_monotonic={non_monotonic} acked_at_wrong_offset={misplaced}",
        acked.len(),
        lost.len()
    );
    assert_eq!(faults, KILLS);
    assert!(
        acked.len() > 1000,
        "the workload made progress: {} acked",
        acked.len()
    );
    assert_eq!(read as i64, total, "read up to the high watermarks");
    assert!(
        lost.is_empty(),
        "lost acknowledged writes: {:?}",
        &lost[..lost.len().min(20)]
    );
    assert_eq!(duplicates, 0, "duplicates");
    assert_eq!(two_values_one_offset, 0);
    assert_eq!(non_monotonic, 0);
    assert_eq!(
        misplaced, 0,
        "acknowledged offsets hold the acknowledged values"
    );
}
