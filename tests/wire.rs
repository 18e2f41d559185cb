//! The wire, byte by byte, against a real broker process: bad frames close only their own
//! connection, a too-new ApiVersions gets the KIP-511 answer, pipelined requests are
//! answered in order, and the broker keeps serving everyone else throughout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use common::BrokerProcess;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, RequestHeader, RequestKind,
    ResponseHeader,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, StrBytes};

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn request(key: ApiKey, version: i16, correlation_id: i32, body: RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf);
    framed
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<BytesMut> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(BytesMut::from(&body[..]))
}

/// True when the broker closed the connection (EOF or reset) instead of answering.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn still_serving(addr: &str) {
    let mut s = connect(addr);
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        42,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ))
    .unwrap();
    let mut frame = read_frame(&mut s).expect("broker answers a fresh connection");
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
}

#[test]
fn bad_frames_close_their_connection_and_nothing_else() {
    let broker = BrokerProcess::start(&["--max-request-bytes", "1048576"]);
    // Larger than socket.request.max.bytes.
    let mut s = connect(&broker.addr);
    s.write_all(&(2_000_000i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s), "oversized frame closes the connection");
    // Negative length.
    let mut s = connect(&broker.addr);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    // Unknown API key, and a known one with garbage after it.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1])
        .unwrap();
    assert!(closed(&mut s));
    // Metadata v1 claiming i32::MAX topics in a 14-byte frame.
    let mut s = connect(&broker.addr);
    s.write_all(&[
        0, 0, 0, 14, 0x00, 0x03, 0x00, 0x01, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
    ])
    .unwrap();
    assert!(closed(&mut s));
    // Produce at an unsupported version (v2) is refused before decoding.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 10, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(closed(&mut s));
    // A peer that sends half a frame and disappears.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 1, 0, 0, 18]).unwrap();
    drop(s);
    still_serving(&broker.addr);
    assert!(broker.log().contains("exceeds socket.request.max.bytes"));
}

#[test]
fn too_new_api_versions_gets_a_v0_answer_with_our_ranges() {
    let broker = BrokerProcess::start(&[]);
    let mut s = connect(&broker.addr);
    // ApiVersions v99: header v2, body irrelevant to the broker.
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("future-client")));
    header.encode_to(&mut buf);
    let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf);
    s.write_all(&framed).unwrap();
    let mut frame = read_frame(&mut s).unwrap();
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let resp = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let broker = BrokerProcess::start(&[]);
    let mut s = connect(&broker.addr);
    let mut batch = Vec::new();
    for id in 0..50 {
        let (key, body) = if id % 2 == 0 {
            (
                ApiKey::ApiVersions,
                RequestKind::ApiVersions(ApiVersionsRequest::default()),
            )
        } else {
            (
                ApiKey::Metadata,
                RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
            )
        };
        let version = if key == ApiKey::ApiVersions { 3 } else { 9 };
        batch.extend(request(key, version, id, body));
    }
    s.write_all(&batch).unwrap();
    for id in 0..50 {
        let mut frame = read_frame(&mut s).unwrap();
        // ApiVersions answers with header v0; Metadata v9 uses the flexible header v1.
        let header_version = if id % 2 == 0 { 0 } else { 1 };
        let header = ResponseHeader::decode(&mut frame, header_version).unwrap();
        assert_eq!(
            header.correlation_id, id,
            "responses come back in request order"
        );
        assert!(frame.remaining() > 0);
    }
}

/// `RequestHeader` encoding for a version the codec has no schema for (the KIP-511 case):
/// header v2 = api key, version, correlation id, client id, empty tagged fields.
trait EncodeTo {
    fn encode_to(&self, buf: &mut BytesMut);
}

impl EncodeTo for RequestHeader {
    fn encode_to(&self, buf: &mut BytesMut) {
        use bytes::BufMut;
        buf.put_i16(self.request_api_key);
        buf.put_i16(self.request_api_version);
        buf.put_i32(self.correlation_id);
        let id = self.client_id.as_deref().unwrap_or("");
        buf.put_i16(id.len() as i16);
        buf.put_slice(id.as_bytes());
        buf.put_u8(0);
    }
}
