//! rdkafka client builders shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, FutureProducer};
use rdkafka::{Offset, TopicPartitionList};

pub fn base_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("broker.address.family", "v4");
    c
}

/// A client config for a tenant: SASL/PLAIN over PLAINTEXT with a cluster API key.
pub fn sasl_config(bootstrap: &str, key: &str, secret: &str) -> ClientConfig {
    let mut c = base_config(bootstrap);
    c.set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", key)
        .set("sasl.password", secret);
    c
}

/// A client config for a tenant over TLS: SASL/PLAIN with a cluster API key, trusting the
/// CA certificate in `ca` (PEM) and checking the broker's name against it.
pub fn sasl_ssl_config(bootstrap: &str, key: &str, secret: &str, ca: &Path) -> ClientConfig {
    let mut c = sasl_config(bootstrap, key, secret);
    c.set("security.protocol", "SASL_SSL")
        .set("ssl.ca.location", ca.to_str().expect("UTF-8 path"))
        .set("ssl.endpoint.identification.algorithm", "https");
    c
}

pub fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    base_config(addr).create().expect("admin client")
}

pub fn future_producer(addr: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = base_config(addr);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

pub fn base_producer(addr: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = base_config(addr);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// A consumer with no group: partitions are assigned by hand.
pub fn assigned_consumer(addr: &str, topic: &str, partitions: i32, from: Offset) -> BaseConsumer {
    let consumer: BaseConsumer = base_config(addr)
        .set("group.id", "unused-manual-assignment")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, from).expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Poll until `want` messages were seen or `timeout` passes; `f` sees each message.
pub fn consume_n(
    consumer: &BaseConsumer,
    want: usize,
    timeout: Duration,
    mut f: impl FnMut(&BorrowedMessage<'_>),
) -> usize {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while seen < want && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                f(&m);
                seen += 1;
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    seen
}

/// Create a topic with replication factor 1 (a standalone broker).
pub async fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    create_topic_rf(addr, name, partitions, 1, configs).await
}

/// Create a topic through the admin API and fail the test if it is refused.
pub async fn create_topic_rf(
    addr: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin(addr);
    let mut topic = NewTopic::new(
        name,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let res = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("create_topics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

pub fn payload<'a>(m: &'a BorrowedMessage<'_>) -> &'a [u8] {
    m.payload().unwrap_or_default()
}

/// An idempotent acks=all producer (the settings every durability test uses), plus `extra`.
pub fn idempotent_producer(addr: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = base_config(addr);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// kcat's arguments to reach `bootstrap` as `key`/`secret` with SASL `mechanism`, over
/// SASL_SSL trusting `ca` when given (else SASL_PLAINTEXT), followed by `rest`.
pub fn kcat_sasl_args(
    bootstrap: &str,
    ca: Option<&Path>,
    mechanism: &str,
    key: &str,
    secret: &str,
    rest: &[&str],
) -> Vec<String> {
    let mut props = vec![match ca {
        Some(_) => "security.protocol=SASL_SSL".to_string(),
        None => "security.protocol=SASL_PLAINTEXT".to_string(),
    }];
    if let Some(ca) = ca {
        props.push(format!("ssl.ca.location={}", ca.display()));
    }
    props.extend([
        format!("sasl.mechanisms={mechanism}"),
        format!("sasl.username={key}"),
        format!("sasl.password={secret}"),
    ]);
    let mut v = vec!["-b".to_string(), bootstrap.to_string()];
    for p in props {
        v.push("-X".into());
        v.push(p);
    }
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Run kcat (the system's, with its own librdkafka) with `args`, feeding `stdin`; its
/// stdout, or a panic with its stderr when it fails or runs over 60 s.
pub fn kcat<S: AsRef<str> + std::fmt::Debug>(args: &[S], stdin: Option<&str>) -> String {
    let out = kcat_output(args, stdin);
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run kcat (bounded) expecting it to fail; returns its stderr.
pub fn kcat_fails<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> String {
    let out = kcat_output(args, None);
    assert!(!out.status.success(), "kcat {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kcat_output<S: AsRef<str> + std::fmt::Debug>(
    args: &[S],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("kcat")
        .args(args.iter().map(AsRef::as_ref))
        // cargo points LD_LIBRARY_PATH at the bundled librdkafka it built for the rdkafka
        // crate (no SSL, no SCRAM); kcat must run on its own (Debian's 2.0.2).
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is required (tests/run-all.sh installs it: apt-get install kcat)");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kcat {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
