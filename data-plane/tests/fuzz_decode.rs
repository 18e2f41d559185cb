//! Hostile input for the request decoder and record validation: random frames, and valid
//! frames with bytes flipped, truncated or length prefixes inflated. Nothing may panic,
//! and nothing may allocate without bound (this test binary installs the same allocator
//! guard as the broker; a multi-GiB capacity read from the wire must not abort it).
//!
//! Case count: `PROPTEST_CASES` (proptest's default of 256 per property in CI; run it
//! longer by hand, e.g. `PROPTEST_CASES=200000`).

use bytes::{Bytes, BytesMut};
use data_plane::codec::decode_request;
use data_plane::log::parse_batches;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

#[global_allocator]
static ALLOC: data_plane::alloc_guard::GuardedAlloc = data_plane::alloc_guard::GuardedAlloc;

fn frame(key: ApiKey, version: i16, body: RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn records(n: usize, compression: Compression) -> Bytes {
    let recs: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; i * 3])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Valid frames of APIs the broker serves, at several versions.
fn seeds() -> Vec<Vec<u8>> {
    let topic = || TopicName(StrBytes::from_static_str("t"));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records(5, Compression::None))),
            ])]);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(100)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic())
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
            ])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
    ]));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(StrBytes::from_static_str("range"))
        .with_metadata(Bytes::from_static(b"meta"))]);
    let mut out = vec![];
    for v in [3, 7, 9, 10] {
        out.push(frame(
            ApiKey::Produce,
            v,
            RequestKind::Produce(produce.clone()),
        ));
    }
    for v in [4, 11, 12] {
        out.push(frame(ApiKey::Fetch, v, RequestKind::Fetch(fetch.clone())));
    }
    for v in [0, 4, 9, 12] {
        out.push(frame(
            ApiKey::Metadata,
            v,
            RequestKind::Metadata(metadata.clone()),
        ));
    }
    for v in [0, 5, 9] {
        out.push(frame(
            ApiKey::JoinGroup,
            v,
            RequestKind::JoinGroup(join.clone()),
        ));
    }
    out.push(frame(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ));
    out
}

#[test]
fn known_hostile_frames_are_errors_not_aborts() {
    // Metadata v0 whose topic-array length claims 54 million entries in 5 bytes.
    let frame = Bytes::from_static(&[
        0x00, 0x03, 0x00, 0x00, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
    ]);
    assert!(decode_request(frame).is_err());
    // Metadata v1 claiming i32::MAX topics.
    let frame = Bytes::from_static(&[
        0x00, 0x03, 0x00, 0x01, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
    ]);
    assert!(decode_request(frame).is_err());
}

proptest! {
    #[test]
    fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Bytes::from(bytes));
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        seed in 0usize..15,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        inflate in any::<bool>(),
    ) {
        let seeds = seeds();
        let mut f = seeds[seed % seeds.len()].clone();
        for (at, byte) in flips {
            let i = at % f.len();
            f[i] = byte;
        }
        if inflate && f.len() > 16 {
            // Turn 4 bytes after the header into a huge array count or length.
            let i = 12 + cut % (f.len() - 16);
            f[i..i + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        } else {
            f.truncate(cut % (f.len() + 1));
        }
        let _ = decode_request(Bytes::from(f));
    }

    #[test]
    fn mutated_record_batches_never_panic(
        n in 1usize..20,
        codec in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let compression = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ][codec];
        let mut b = records(n, compression).to_vec();
        for (at, byte) in flips {
            let i = at % b.len();
            b[i] = byte;
        }
        let keep = b.len() / 2 + cut % (b.len() / 2 + 1);
        b.truncate(keep);
        let _ = parse_batches(&b, 1 << 20);
    }
}
