//! SASL_SSL: cell brokers (real processes) with a TLS listener whose certificate a CA made
//! by the test signed. Clients that trust the CA produce and consume exactly as over
//! SASL_PLAINTEXT (librdkafka through rdkafka, and Debian's kcat), Metadata names the
//! brokers' SASL_SSL endpoints, tenants stay apart, and a client that does not trust the
//! CA, one that speaks no TLS, or one that never finishes its handshake is disconnected
//! alone while the broker goes on serving the others. With the control plane, a cluster
//! placed in such a cell shows a `SASL_SSL://` bootstrap that a fresh key works at.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::{consume_n, kcat, kcat_sasl_args, payload, sasl_config, sasl_ssl_config};
use common::control_plane::{ControlPlane, Db};
use common::tls::TestCa;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::io::AsyncReadExt;

const A: &str = "lkc-tls-a";
const B: &str = "lkc-tls-b";
const KEY_A: &str = "TLSKEYAAAAAAAAAA";
const KEY_B: &str = "TLSKEYBBBBBBBBBB";
const SECRET_A: &str = "secret-of-tenant-a";
const SECRET_B: &str = "secret-of-tenant-b";
const TOPIC: &str = "payments";
const RECORDS: usize = 200;

/// Two brokers with SASL_SSL listeners (1 s TLS handshake timeout) and two tenants.
async fn tls_cell() -> Cell {
    let cell = Cell::start_sasl_ssl(
        1,
        2,
        &["--default-replication-factor", "2"],
        &["--tls-handshake-timeout-ms", "1000"],
    );
    cell.wait_active(2).await;
    cell.create_tenant(A).await;
    cell.create_tenant(B).await;
    cell.put_key(A, KEY_A, SECRET_A, "User:u-alice").await;
    cell.put_key(B, KEY_B, SECRET_B, "User:u-bob").await;
    cell
}

fn producer(cell: &Cell, key: &str, secret: &str) -> FutureProducer {
    sasl_ssl_config(&cell.sasl_ssl_bootstrap(), key, secret, cell.ca())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer")
}

/// A consumer that never asks the broker to create a topic it names.
fn consumer(bootstrap: &str, key: &str, secret: &str, ca: &Path) -> BaseConsumer {
    sasl_ssl_config(bootstrap, key, secret, ca)
        .set("group.id", "unused-manual-assignment")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("consumer")
}

/// Produce `n` records `prefix-i` to partition 0 of `topic`; every one acknowledged.
async fn produce(p: &FutureProducer, topic: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let value = format!("{prefix}-{i}");
        p.send(
            FutureRecord::to(topic)
                .partition(0)
                .payload(&value)
                .key("k"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce {value}: {e}"));
    }
}

/// Poll until `log` of some broker of `cell` contains `needle` (30 s).
async fn wait_logged(cell: &Cell, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cell.brokers.iter().any(|b| b.log().contains(needle)) {
        assert!(Instant::now() < deadline, "no broker logged {needle:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_and_kcat_work_over_sasl_ssl_and_bad_tls_clients_are_cut_off_alone() {
    let cell = tls_cell().await;
    let bootstrap = cell.sasl_ssl_bootstrap();

    // Admin over TLS: a replicated topic of tenant A.
    let admin: AdminClient<DefaultClientContext> =
        sasl_ssl_config(&bootstrap, KEY_A, SECRET_A, cell.ca())
            .create()
            .expect("admin");
    let created = admin
        .create_topics(
            [&NewTopic::new(TOPIC, 1, TopicReplication::Fixed(2))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("CreateTopics over SASL_SSL");
    for r in created {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }

    // Metadata names the SASL_SSL endpoints to a client that came in over TLS.
    let a = consumer(&bootstrap, KEY_A, SECRET_A, cell.ca());
    let md = a
        .fetch_metadata(None, Duration::from_secs(20))
        .expect("metadata over SASL_SSL");
    let advertised: BTreeSet<String> = md
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    let expected: BTreeSet<String> = bootstrap.split(',').map(str::to_string).collect();
    assert_eq!(
        advertised, expected,
        "Metadata over TLS names the TLS listeners"
    );
    let sasl_plain: BTreeSet<String> = cell
        .sasl_bootstrap()
        .split(',')
        .map(str::to_string)
        .collect();
    assert!(advertised.is_disjoint(&sasl_plain));

    // Produce (idempotent, acks=all, replicated) and read everything back over TLS.
    let p = producer(&cell, KEY_A, SECRET_A);
    produce(&p, TOPIC, "a", RECORDS).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    a.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let n = consume_n(&a, RECORDS, Duration::from_secs(60), |m| {
        seen.push(String::from_utf8_lossy(payload(m)).to_string())
    });
    assert_eq!(n, RECORDS, "every record read back over SASL_SSL");
    let want: Vec<String> = (0..RECORDS).map(|i| format!("a-{i}")).collect();
    assert_eq!(seen, want);
    println!("{RECORDS} records produced (acks=all, RF 2) and consumed over SASL_SSL");

    // Tenant isolation holds over TLS: B's key finds A's topic exactly as absent as a
    // name that exists nowhere, and cannot read its offsets.
    let b = consumer(&bootstrap, KEY_B, SECRET_B, cell.ca());
    let all = b
        .fetch_metadata(None, Duration::from_secs(20))
        .expect("B's metadata");
    assert!(
        all.topics().iter().all(|t| t.name() != TOPIC),
        "B lists A's topic"
    );
    let topic_error = |name: &str| {
        let md = b
            .fetch_metadata(Some(name), Duration::from_secs(20))
            .expect("B's metadata for one topic");
        md.topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.error())
    };
    let theirs = topic_error(TOPIC);
    assert_eq!(theirs, topic_error("no-such-topic-anywhere"));
    assert!(theirs.flatten().is_some(), "A's topic is an error for B");
    let watermarks = b.fetch_watermarks(TOPIC, 0, Duration::from_secs(10));
    assert!(
        matches!(
            watermarks,
            Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownPartition
            )) | Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition
            ))
        ),
        "B reads offsets of A's topic: {watermarks:?}"
    );

    // kcat (Debian's librdkafka, built with OpenSSL) round trip over SASL_SSL: written with
    // SASL/PLAIN, read back with SCRAM-SHA-512 (the proof exchange inside TLS).
    let ca = cell.ca();
    let kcat_args = |mechanism: &str, rest: &[&str]| {
        kcat_sasl_args(&bootstrap, Some(ca), mechanism, KEY_A, SECRET_A, rest)
    };
    kcat(
        &kcat_args("PLAIN", &["-P", "-t", "greetings", "-X", "acks=all"]),
        Some("hello\nover tls\n"),
    );
    let out = kcat(
        &kcat_args(
            "SCRAM-SHA-512",
            &[
                "-C",
                "-t",
                "greetings",
                "-o",
                "beginning",
                "-e",
                "-f",
                "%s\n",
            ],
        ),
        None,
    );
    assert_eq!(out, "hello\nover tls\n");

    // A client that trusts another CA: its handshake fails, and the broker logs it.
    let stranger = TestCa::new("someone else's CA");
    let untrusting = consumer(&bootstrap, KEY_A, SECRET_A, &stranger.ca);
    assert!(
        untrusting
            .fetch_metadata(None, Duration::from_secs(5))
            .is_err(),
        "a client that does not trust the broker's CA gets no metadata"
    );
    wait_logged(&cell, "TLS handshake failed").await;
    drop(untrusting);

    // A client that speaks SASL_PLAINTEXT to the TLS port gets nowhere either.
    let plaintext: BaseConsumer = sasl_config(&bootstrap, KEY_A, SECRET_A)
        .set("group.id", "unused")
        .create()
        .expect("consumer");
    assert!(plaintext
        .fetch_metadata(None, Duration::from_secs(5))
        .is_err());
    drop(plaintext);

    // A peer that connects and never says a word is disconnected after the 1 s timeout.
    let first_tls = cell.brokers[0].sasl_ssl_addr.clone().unwrap();
    let mut silent = tokio::net::TcpStream::connect(&first_tls).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf))
        .await
        .expect("the broker closes a connection stuck in its handshake");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without a byte: {read:?}"
    );
    wait_logged(&cell, "TLS handshake not finished within 1000 ms").await;

    // Meanwhile the broker serves good clients as before: the same producer and a new one.
    produce(&p, TOPIC, "after", 5).await;
    let fresh = producer(&cell, KEY_A, SECRET_A);
    produce(&fresh, TOPIC, "fresh", 5).await;
    let n = consume_n(&a, 10, Duration::from_secs(60), |_| {});
    assert_eq!(n, 10, "the records produced after the bad clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_hands_out_a_sasl_ssl_bootstrap_when_the_cell_has_one() {
    let cell = Cell::start_sasl_ssl(
        1,
        1,
        &["--default-replication-factor", "1"],
        &["--min-insync-replicas", "1"],
    );
    cell.wait_active(1).await;
    let cp = ControlPlane::start(&Db::Sqlite, &[format!("cell-test={}", cell.controllers)]).await;
    let (token, user) = cp.account("tls@example.com").await;
    let cluster = cp.provisioned_cluster(&token).await;
    let (_, c) = cp
        .call(
            reqwest::Method::GET,
            &format!("/cmk/v2/clusters/{cluster}"),
            Some(&token),
            None,
        )
        .await;
    let endpoint = c["spec"]["kafka_bootstrap_endpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no bootstrap: {c}"));
    let servers = endpoint
        .strip_prefix("SASL_SSL://")
        .unwrap_or_else(|| panic!("{endpoint} is SASL_SSL"));
    assert_eq!(servers, cell.sasl_ssl_bootstrap());

    // A fresh key works there once the cell has it (propagation is asynchronous).
    let (key, secret) = cp.cluster_key(&token, &user, &cluster).await;
    let p: FutureProducer = sasl_ssl_config(servers, &key, &secret, cell.ca())
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = p
            .send(
                FutureRecord::to("welcome").payload("hi").key("k"),
                Duration::from_secs(5),
            )
            .await;
        match sent {
            Ok(_) => break,
            Err((e, _)) => assert!(
                Instant::now() < deadline,
                "the new key never produced over SASL_SSL: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
