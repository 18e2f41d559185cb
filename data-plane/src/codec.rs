//! Frame <-> message translation, all through the `kafka-protocol` crate.
//!
//! A frame is the bytes after the 4-byte length prefix. Decoding checks the API key and
//! version against what this broker implements *before* the body decoder runs (the crate
//! cannot encode versions below a schema's minimum, and we never decode what we would
//! not answer). Encoding writes the length prefix, the response header in the version the
//! API requires, and the body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};

use crate::handler::api_versions::supported_range;

/// A decoded request, ready for dispatch.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a frame could not become a [`Request`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame is not a Kafka request we can parse: the connection must be closed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A known API at a version we do not implement. ApiVersions gets an answer (KIP-511);
    /// anything else closes the connection, as Kafka does.
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
}

/// Decode one frame. Never panics; allocation is bounded by the frame (see `alloc_guard`).
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Malformed(format!(
            "frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key)
        .map_err(|_| DecodeError::Malformed(format!("unknown API key {raw_key}")))?;
    let Some((min, max)) = supported_range(api_key) else {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    };
    if version < min || version > max {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    }
    let header = decode_request_header_from_buffer(&mut frame)
        .map_err(|e| DecodeError::Malformed(format!("bad {api_key:?} header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| DecodeError::Malformed(format!("bad {api_key:?} v{version} body: {e}")))?;
    Ok(Request {
        api_key,
        header,
        body,
    })
}

/// Encode a response frame, length prefix included.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    // ApiVersions responses always use header v0 so that old clients can parse them (KIP-511).
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(
        4 + header.compute_size(header_version)? + response_size(body, version),
    );
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let len = i32::try_from(buf.len() - 4)?;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A size hint for the response buffer; fetch responses can be large.
fn response_size(body: &ResponseKind, version: i16) -> usize {
    match body {
        ResponseKind::Fetch(f) => f.compute_size(version).unwrap_or(0),
        _ => 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::encode_request_header_into_buffer;

    fn frame_for(key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_api_versions() {
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let req = decode_request(frame_for(ApiKey::ApiVersions, 3, &body)).unwrap();
        assert_eq!(req.api_key, ApiKey::ApiVersions);
        assert_eq!(req.correlation_id(), 7);
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        match decode_request(frame_for(ApiKey::ApiVersions, 3, &body).slice(0..4)) {
            Err(DecodeError::Malformed(_)) => {}
            other => panic!("expected malformed, got {other:?}"),
        }
        let mut raw = frame_for(ApiKey::ApiVersions, 3, &body).to_vec();
        raw[2..4].copy_from_slice(&99i16.to_be_bytes());
        match decode_request(Bytes::from(raw)) {
            Err(DecodeError::UnsupportedVersion {
                version: 99,
                correlation_id: 7,
                ..
            }) => {}
            other => panic!("expected unsupported version, got {other:?}"),
        }
        assert!(matches!(
            decode_request(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1])),
            Err(DecodeError::Malformed(_))
        ));
    }
}
