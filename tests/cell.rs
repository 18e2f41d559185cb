//! A cell of real processes (controller voters and three brokers) used through rdkafka:
//! replicated topics, acks=all with an idempotent producer, leader failover after a
//! SIGKILL (measured and printed), and a broker wiped of its data re-replicating and
//! rejoining the ISR.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::{assigned_consumer, create_topic_rf, idempotent_producer};
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Offset;

fn producer(bootstrap: &str) -> FutureProducer {
    idempotent_producer(bootstrap, &[("linger.ms", "1")])
}

/// (leader, isr) of `topic`-`partition` as the cluster's metadata says.
fn placement(p: &FutureProducer, topic: &str, partition: i32) -> (i32, Vec<i32>) {
    let md = p
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("metadata");
    let part = &md.topics()[0].partitions()[partition as usize];
    (part.leader(), part.isr().to_vec())
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Read until `want` records arrived or a minute passed. Transport errors while brokers
/// come and go are expected: the client recovers on its own.
fn read_all(bootstrap: &str, topic: &str, partitions: i32, want: usize) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = assigned_consumer(bootstrap, topic, partitions, Offset::Beginning);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            out.push((m.partition(), m.offset(), v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicated_writes_survive_leader_sigkill_and_failover_is_measured() {
    let mut cell = Cell::start(1, 3, &[], &[]);
    cell.ready(3).await;
    let bootstrap = cell.bootstrap();
    create_topic_rf(&bootstrap, "orders", 3, 3, &[]).await;
    let p = producer(&bootstrap);
    for i in 0..300 {
        let v = format!("v{i}");
        p.send(
            FutureRecord::to("orders").key(&v).payload(&v),
            Duration::from_secs(30),
        )
        .await
        .expect("acked");
    }
    let (leader, isr) = placement(&p, "orders", 0);
    assert_eq!(isr.len(), 3, "all replicas in sync: {isr:?}");

    // A steady stream of acks=all writes to partition 0 while its leader is SIGKILLed.
    // (sent at, acknowledged at, ok) of every write.
    let acks: Arc<Mutex<Vec<(Instant, Instant, bool)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (p, acks, stop) = (p.clone(), acks.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut inflight = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = format!("f{i}");
                i += 1;
                let (p, acks) = (p.clone(), acks.clone());
                let sent = Instant::now();
                inflight.push(tokio::spawn(async move {
                    let r = p
                        .send(
                            FutureRecord::to("orders").partition(0).payload(&v).key(&v),
                            Duration::from_secs(60),
                        )
                        .await;
                    acks.lock().unwrap().push((sent, Instant::now(), r.is_ok()));
                }));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for t in inflight {
                let _ = t.await;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = cell
        .brokers
        .iter_mut()
        .find(|b| b.node_id == leader)
        .expect("leader process");
    victim.kill9();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(60);
    let failover = loop {
        let first = acks
            .lock()
            .unwrap()
            .iter()
            // Only writes sent after the kill: an earlier one may complete late.
            .filter(|(sent, _, ok)| *ok && *sent > killed_at)
            .map(|(_, acked, _)| *acked - killed_at)
            .min();
        if let Some(d) = first {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "no write was acknowledged after the leader died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "FAILOVER: first acknowledged write {} ms after SIGKILL of the leader (broker {leader})",
        failover.as_millis()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = writer.await.unwrap();
    let failed = acks.lock().unwrap().iter().filter(|(_, _, ok)| !ok).count();
    assert_eq!(
        failed, 0,
        "idempotent acks=all writes failed during failover"
    );

    // The killed broker comes back, catches up and rejoins the ISR.
    cell.brokers
        .iter_mut()
        .find(|b| !b.is_running())
        .unwrap()
        .restart();
    wait_for(
        "the restarted broker back in every ISR",
        Duration::from_secs(60),
        || (0..3).all(|i| placement(&p, "orders", i).1.len() == 3),
    );
    let all = read_all(&cell.bootstrap(), "orders", 3, 300 + sent as usize);
    assert_eq!(
        all.len(),
        300 + sent as usize,
        "every acknowledged record is read back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_broker_re_replicates_and_rejoins_the_isr() {
    let mut cell = Cell::start(1, 3, &[], &[]);
    cell.ready(3).await;
    let bootstrap = cell.bootstrap();
    create_topic_rf(&bootstrap, "wiped", 2, 3, &[]).await;
    let p = producer(&bootstrap);
    for i in 0..500 {
        let v = format!("w{i}");
        p.send(
            FutureRecord::to("wiped").key(&v).payload(&v),
            Duration::from_secs(30),
        )
        .await
        .expect("acked");
    }
    let victim = &mut cell.brokers[2];
    victim.kill9();
    victim.wipe_data();
    victim.restart();
    wait_for(
        "the wiped broker back in every ISR",
        Duration::from_secs(60),
        || (0..2).all(|i| placement(&p, "wiped", i).1.len() == 3),
    );
    // Its copy is whole: stop the other two and read everything from it alone... after
    // the controller fences them and moves leadership to it.
    let survivor_id = 3;
    for b in cell.brokers.iter_mut().filter(|b| b.node_id != survivor_id) {
        b.stop();
    }
    let only = cell.brokers[2].addr.clone();
    let all = read_all(&only, "wiped", 2, 500);
    assert_eq!(
        all.len(),
        500,
        "the re-replicated broker holds every record"
    );
}
