//! A raw Kafka client for tests that need to send exact requests (by name or id, with
//! chosen versions) and see exact error codes: one connection, one request at a time,
//! optionally authenticated with SASL/PLAIN.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct WireClient {
    stream: TcpStream,
    next_id: i32,
}

impl WireClient {
    pub async fn connect(addr: &str) -> WireClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        WireClient { stream, next_id: 1 }
    }

    /// Connect and authenticate with SASL/PLAIN; `Err((code, message))` when refused.
    pub async fn sasl_plain(
        addr: &str,
        user: &str,
        password: &str,
    ) -> Result<WireClient, (i16, String)> {
        let mut c = WireClient::connect(addr).await;
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        match c.call(ApiKey::SaslHandshake, 1, hs.into()).await {
            Ok(ResponseKind::SaslHandshake(r)) if r.error_code == 0 => {}
            Ok(ResponseKind::SaslHandshake(r)) => return Err((r.error_code, "handshake".into())),
            other => panic!("unexpected handshake answer {other:?}"),
        }
        let token = format!("\0{user}\0{password}");
        let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        match c.call(ApiKey::SaslAuthenticate, 2, auth.into()).await {
            Ok(ResponseKind::SaslAuthenticate(r)) if r.error_code == 0 => Ok(c),
            Ok(ResponseKind::SaslAuthenticate(r)) => Err((
                r.error_code,
                r.error_message.map(|m| m.to_string()).unwrap_or_default(),
            )),
            Ok(other) => panic!("unexpected authenticate answer {other:?}"),
            Err(e) => Err((-1, format!("connection closed: {e}"))),
        }
    }

    /// Send one request and read its response; an I/O error means the broker closed
    /// the connection.
    pub async fn call(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> std::io::Result<ResponseKind> {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("wire-test")));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf);
        self.stream.write_all(&framed).await?;
        let mut len = [0u8; 4];
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.stream.read_exact(&mut len),
        )
        .await
        .map_err(|_| std::io::Error::other("no answer in 30 s"))??;
        let n = i32::from_be_bytes(len);
        assert!((0..64 << 20).contains(&n), "frame size {n}");
        let mut frame = vec![0u8; n as usize];
        self.stream.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, id, "responses come in order");
        let resp = ResponseKind::decode(key, &mut frame, version).expect("response body");
        assert_eq!(frame.remaining(), 0, "whole response decoded");
        Ok(resp)
    }

    /// True when the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Uncompressed v2 record batches holding `values` (no keys, producer id -1); the
/// encoder writes one batch per record.
pub fn record_batch(values: &[String]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 0,
            delete_horizon: false,
            key: None,
            value: Some(Bytes::from(v.clone())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf.freeze()
}
