//! `kafka topic produce` and `kafka topic consume`: the CLI as a Kafka client (rdkafka) of
//! a cluster's SASL_SSL or SASL_PLAINTEXT bootstrap, with a cluster API key as the SASL/PLAIN user and
//! secret, as the `confluent` CLI does.
//!
//! Produce reads records from stdin, one per line (a line is at most [`MAX_LINE_BYTES`]; a
//! thread reads them into a channel of [`LINES_AHEAD`]), keeps at most [`MAX_IN_FLIGHT`]
//! unacknowledged and stops at end of input or Ctrl-C, after every record sent is
//! acknowledged (acks=all). Consume prints records one per line
//! until Ctrl-C, `--max-messages` or `--idle-timeout`; with `--group` it consumes as that
//! consumer group and commits what it printed, without one it reads every partition with no
//! group and commits nothing.

use anyhow::{anyhow, bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest line taken as one record (librdkafka's default `message.max.bytes`).
pub const MAX_LINE_BYTES: u64 = 1_000_000;
/// Lines read ahead of the producer.
pub const LINES_AHEAD: usize = 64;
/// Most records sent and not yet acknowledged.
pub const MAX_IN_FLIGHT: usize = 1024;
/// How long a record may wait for its acknowledgement (librdkafka retries meanwhile).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The group id given to a consumer without `--group` (never joined, never committed to).
const UNUSED_GROUP: &str = "tributary-cli-no-group";
/// How long to wait for the topic's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and as whom to connect.
pub struct Target {
    /// `[SASL_SSL://|SASL_PLAINTEXT://]host:port,...` (no prefix: SASL_PLAINTEXT).
    pub bootstrap: String,
    /// The CA for a SASL_SSL endpoint (none: the system's).
    pub ca_file: Option<std::path::PathBuf>,
    pub api_key: String,
    pub api_secret: String,
}

/// The security protocol and the `host:port,...` list of a bootstrap endpoint.
fn split_endpoint(endpoint: &str) -> anyhow::Result<(&'static str, &str)> {
    match endpoint.split_once("://") {
        None => Ok(("SASL_PLAINTEXT", endpoint)),
        Some(("SASL_PLAINTEXT", hosts)) => Ok(("SASL_PLAINTEXT", hosts)),
        Some(("SASL_SSL", hosts)) => Ok(("SASL_SSL", hosts)),
        Some((other, _)) => bail!(
            "bootstrap {endpoint:?}: protocol {other} is not one a cluster API key can use \
             (SASL_SSL or SASL_PLAINTEXT)"
        ),
    }
}

impl Target {
    fn config(&self) -> anyhow::Result<ClientConfig> {
        let (protocol, hosts) = split_endpoint(&self.bootstrap)?;
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", hosts)
            .set("security.protocol", protocol);
        if let (true, Some(ca)) = (protocol == "SASL_SSL", &self.ca_file) {
            if !ca.is_file() {
                bail!("CA file {} does not exist (--ca-file)", ca.display());
            }
            c.set("ssl.ca.location", ca.to_string_lossy());
        }
        c.set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", &self.api_key)
            .set("sasl.password", &self.api_secret)
            .set("client.id", "tributary-cli");
        Ok(c)
    }
}

/// What `kafka topic consume` does.
pub struct ConsumeOptions {
    pub from_beginning: bool,
    pub group: Option<String>,
    pub print_key: bool,
    pub delimiter: String,
    pub max_messages: Option<u64>,
    pub idle_timeout: Option<Duration>,
}

/// The next line of `input` without its line end, `None` at the end of input; a line
/// longer than [`MAX_LINE_BYTES`] is an error.
fn next_line<R: BufRead>(input: &mut R, line: &mut Vec<u8>) -> anyhow::Result<Option<()>> {
    line.clear();
    let read = input
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', line)
        .context("reading stdin")?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() as u64 > MAX_LINE_BYTES {
        bail!("a line of stdin is longer than {MAX_LINE_BYTES} bytes, the largest record taken");
    }
    Ok(Some(()))
}

/// Stdin's lines, read on a thread of their own (stdin blocks) into a bounded channel; an
/// error ends them.
fn stdin_lines() -> mpsc::Receiver<anyhow::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(LINES_AHEAD);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        loop {
            let next = match next_line(&mut input, &mut line) {
                Ok(Some(())) => Ok(std::mem::take(&mut line)),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let failed = next.is_err();
            if tx.blocking_send(next).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Waits for the oldest record in flight to be acknowledged.
async fn acknowledged(topic: &str, delivery: DeliveryFuture) -> anyhow::Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(delivery_error(topic, e)),
        Err(_) => bail!("the producer stopped before the record to {topic:?} was acknowledged"),
    }
}

fn delivery_error(topic: &str, e: KafkaError) -> anyhow::Error {
    let hint = match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
            "; a service account's key needs an ACL allowing WRITE on the topic"
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
            "; create the topic first (tributary kafka topic create)"
        }
        _ => "",
    };
    anyhow!("producing to {topic:?} failed: {e}{hint}")
}

/// Produces stdin's lines to `topic`; answers how many records were acknowledged.
pub async fn produce(
    target: &Target,
    topic: &str,
    parse_key: bool,
    delimiter: &str,
) -> anyhow::Result<u64> {
    if parse_key && delimiter.is_empty() {
        bail!("--delimiter must not be empty with --parse-key");
    }
    let producer: FutureProducer = target
        .config()?
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        .create()
        .context("cannot create the Kafka producer")?;
    eprintln!("Producing to {topic:?}: one record per line of stdin; Ctrl-D or Ctrl-C ends.");
    let mut lines = stdin_lines();
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut sent = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let line = tokio::select! {
            _ = &mut ctrl_c => break,
            line = lines.recv() => match line {
                Some(line) => line?,
                None => break,
            },
        };
        let (key, value) = match (parse_key, memchr(delimiter.as_bytes(), &line)) {
            (true, Some(at)) => (Some(&line[..at]), &line[at + delimiter.len()..]),
            (true, None) => bail!(
                "line {} has no {delimiter:?} to split its key from its value (--parse-key)",
                sent + 1
            ),
            (false, _) => (None, &line[..]),
        };
        if in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(oldest) = in_flight.pop_front() {
                acknowledged(topic, oldest).await?;
            }
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    match in_flight.pop_front() {
                        Some(oldest) => acknowledged(topic, oldest).await?,
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(delivery_error(topic, e)),
            }
        };
        in_flight.push_back(delivery);
        sent += 1;
    }
    while let Some(d) = in_flight.pop_front() {
        acknowledged(topic, d).await?;
    }
    producer
        .flush(DELIVERY_TIMEOUT)
        .map_err(|e| delivery_error(topic, e))?;
    Ok(sent)
}

/// The first position of `needle` in `haystack`.
fn memchr(needle: &[u8], haystack: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Consumes `topic` and prints its records; answers how many were printed.
pub async fn consume(target: &Target, topic: &str, opts: &ConsumeOptions) -> anyhow::Result<u64> {
    let mut config = target.config()?;
    config.set("enable.partition.eof", "false").set(
        "auto.offset.reset",
        if opts.from_beginning {
            "earliest"
        } else {
            "latest"
        },
    );
    match &opts.group {
        Some(group) => config
            .set("group.id", group)
            .set("enable.auto.commit", "true"),
        // librdkafka's consumer needs a group id even to assign partitions by hand; this
        // one is never joined and nothing is committed to it.
        None => config
            .set("group.id", UNUSED_GROUP)
            .set("enable.auto.commit", "false"),
    };
    let consumer: StreamConsumer = config
        .create()
        .context("cannot create the Kafka consumer")?;
    if opts.group.is_some() {
        consumer
            .subscribe(&[topic])
            .with_context(|| format!("cannot subscribe to {topic:?}"))?;
    } else {
        assign_every_partition(&consumer, topic, opts.from_beginning)?;
    }
    let mut printed = 0u64;
    let idle = opts.idle_timeout.unwrap_or(Duration::MAX);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let stdout = std::io::stdout();
    while opts.max_messages.is_none_or(|max| printed < max) {
        let next = tokio::select! {
            _ = &mut ctrl_c => break,
            next = tokio::time::timeout(idle, consumer.recv()) => next,
        };
        let message = match next {
            Err(_) => break,
            Ok(Err(e)) => bail!("consuming {topic:?} failed: {e}{}", consume_hint(&e)),
            Ok(Ok(m)) => m,
        };
        let mut out = stdout.lock();
        if opts.print_key {
            out.write_all(message.key().unwrap_or_default())?;
            out.write_all(opts.delimiter.as_bytes())?;
        }
        out.write_all(message.payload().unwrap_or_default())?;
        out.write_all(b"\n")?;
        out.flush()?;
        printed += 1;
    }
    if opts.group.is_some() {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            // Nothing consumed, nothing to commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => bail!("committing the group's offsets failed: {e}"),
        }
    }
    Ok(printed)
}

fn consume_hint(e: &KafkaError) -> &'static str {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
            "; a service account's key needs an ACL allowing READ on the topic"
        }
        Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
            "; a service account's key needs an ACL allowing READ on the group"
        }
        _ => "",
    }
}

/// Assigns every partition of `topic` at its beginning or end.
fn assign_every_partition(
    consumer: &StreamConsumer,
    topic: &str,
    from_beginning: bool,
) -> anyhow::Result<()> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("cannot read the metadata of {topic:?}"))?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("the cluster did not describe topic {topic:?}"))?;
    if let Some(e) = t.error() {
        bail!(
            "topic {topic:?} cannot be read: {}",
            RDKafkaErrorCode::from(e)
        );
    }
    let start = if from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for p in t.partitions() {
        assignment
            .add_partition_offset(topic, p.id(), start)
            .context("building the assignment")?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot assign the partitions of {topic:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_their_protocol() {
        assert_eq!(
            split_endpoint("h:1,h:2").unwrap(),
            ("SASL_PLAINTEXT", "h:1,h:2")
        );
        assert_eq!(
            split_endpoint("SASL_PLAINTEXT://h:1").unwrap(),
            ("SASL_PLAINTEXT", "h:1")
        );
        assert_eq!(
            split_endpoint("SASL_SSL://h:1").unwrap(),
            ("SASL_SSL", "h:1")
        );
        let err = split_endpoint("PLAINTEXT://h:1").unwrap_err().to_string();
        assert!(err.contains("SASL_SSL or SASL_PLAINTEXT"), "{err}");
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut input = &b"a:1\r\nb:2\nlast"[..];
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut input, &mut line).unwrap().is_some() {
            lines.push(String::from_utf8(line.clone()).unwrap());
        }
        assert_eq!(lines, vec!["a:1", "b:2", "last"]);
        let long = vec![b'x'; MAX_LINE_BYTES as usize + 2];
        let mut input = &long[..];
        assert!(next_line(&mut input, &mut line).is_err());
        let exact = vec![b'x'; MAX_LINE_BYTES as usize];
        let mut input = &exact[..];
        assert!(next_line(&mut input, &mut line).unwrap().is_some());
        assert_eq!(memchr(b"::", b"k::v"), Some(1));
        assert_eq!(memchr(b":", b"kv"), None);
    }
}
