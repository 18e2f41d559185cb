//! One connection to one broker's SASL_PLAINTEXT listener: connect, ApiVersions,
//! SaslHandshake v1 and SaslAuthenticate (PLAIN with the caller's cluster API key), then
//! request/response calls in order, one at a time.
//!
//! Every read from the wire is bounded before anything is allocated for it: a response
//! frame's length must be at most [`Limits::max_response_bytes`]. Every step runs under
//! the caller's deadline (and a per-call cap), so a silent broker costs at most that.
//! Requests and responses are encoded and decoded by the `kafka-protocol` crate; this
//! file only frames them. (The crate sizes vectors from wire counts before checking the
//! bytes exist; in the `tributary` binary the allocation guard of
//! `data_plane::alloc_guard` bounds what a hostile count can cost. The peers here are the
//! cell's own brokers.)

use super::{Credentials, Limits};
use crate::error::{Error, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange,
};
use kafka_protocol::ResponseError;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// The client id the brokers see (and log) for the control plane's connections.
const CLIENT_ID: &str = "tributary-control-plane";

/// An authenticated connection to one broker.
pub(crate) struct Connection {
    /// `host:port`, for messages.
    pub addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
    /// What the broker implements: API key -> (min, max) version.
    versions: HashMap<i16, (i16, i16)>,
    limits: Limits,
}

impl Connection {
    /// Connects to `addr` (TCP only: [`Connection::authenticate`] is next), before
    /// `deadline` and within the connect timeout.
    pub async fn connect(addr: &str, limits: Limits, deadline: Instant) -> Result<Connection> {
        let connect_by = deadline.min(Instant::now() + limits.connect_timeout);
        let stream = match timeout_at(connect_by, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(addr, &e.to_string())),
            Err(_) => return Err(unreachable(addr, "connect timed out")),
        };
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            addr: addr.to_string(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
            limits,
        })
    }

    /// Learns the broker's API versions, then authenticates with `credentials`.
    pub async fn authenticate(
        &mut self,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<()> {
        self.negotiate_versions(deadline).await?;
        self.sasl_plain(credentials, deadline).await
    }

    /// ApiVersions v3 (the brokers answer 0 to 4): what the broker implements.
    async fn negotiate_versions(&mut self, deadline: Instant) -> Result<()> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp = self.send(&req, 3, deadline).await?;
        if resp.error_code != 0 {
            return Err(self.protocol_error(&format!(
                "answered ApiVersions v3 with {}",
                kafka_error_name(resp.error_code)
            )));
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|v| (v.api_key, (v.min_version, v.max_version)))
            .collect();
        Ok(())
    }

    /// SaslHandshake v1 (PLAIN), then SaslAuthenticate with `\0key\0secret` (RFC 4616).
    async fn sasl_plain(&mut self, credentials: &Credentials, deadline: Instant) -> Result<()> {
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        let version = self.version::<SaslHandshakeRequest>(VersionRange { min: 1, max: 1 })?;
        let resp = self.send(&handshake, version, deadline).await?;
        if resp.error_code != 0 {
            return Err(self.protocol_error(&format!(
                "does not take SASL/PLAIN ({}); is this the cluster's SASL_PLAINTEXT listener?",
                kafka_error_name(resp.error_code)
            )));
        }
        let mut token =
            BytesMut::with_capacity(2 + credentials.key.len() + credentials.secret.len());
        token.put_u8(0);
        token.put_slice(credentials.key.as_bytes());
        token.put_u8(0);
        token.put_slice(credentials.secret.as_bytes());
        let auth = SaslAuthenticateRequest::default().with_auth_bytes(token.freeze());
        let version = self.version::<SaslAuthenticateRequest>(VersionRange { min: 0, max: 2 })?;
        let resp = self.send(&auth, version, deadline).await?;
        if resp.error_code != 0 {
            // The control plane has already checked the key and secret against its store,
            // so a refusal here means the cell has not (or no longer) got the key.
            return Err(Error::Unavailable(format!(
                "broker {} refused API key {} ({}): a new key reaches the cluster's brokers \
                 within a second of its creation, a deleted one stops working at once; retry, \
                 and if it persists create a new key",
                self.addr,
                credentials.key,
                kafka_error_name(resp.error_code)
            )));
        }
        Ok(())
    }

    /// The highest version of `R` that we (`ours`), the codec and the broker all support.
    pub fn version<R: Request>(&self, ours: VersionRange) -> Result<i16> {
        let codec = ours.intersect(&R::VERSIONS);
        let (min, max) = self.versions.get(&R::KEY).copied().ok_or_else(|| {
            self.protocol_error(&format!("does not implement {}", api_name::<R>()))
        })?;
        let common = codec.intersect(&VersionRange { min, max });
        if common.is_empty() {
            return Err(self.protocol_error(&format!(
                "implements {} v{min}..{max}, this control plane v{}",
                api_name::<R>(),
                codec
            )));
        }
        Ok(common.max)
    }

    /// Sends `req` at `version` and reads its response, before `deadline` (and within the
    /// per-call cap). A failed call leaves the connection unusable: drop it.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        deadline: Instant,
    ) -> Result<R::Response> {
        let by = deadline.min(Instant::now() + self.limits.call_timeout);
        let what = api_name::<R>();
        match timeout_at(by, self.round_trip(req, version)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(format!(
                "broker {} did not answer {what:?} in time; retry",
                self.addr
            ))),
        }
    }

    async fn round_trip<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let frame = encode_frame(&header, R::header_version(version), req, version)?;
        let io = |e: std::io::Error| unreachable(&self.addr, &e.to_string());
        self.stream.write_all(&frame).await.map_err(io)?;
        let len = self.stream.read_i32().await.map_err(io)?;
        let max = self.limits.max_response_bytes;
        if len < 0 || len as usize > max {
            return Err(self.protocol_error(&format!(
                "sent a response frame of {len} bytes (at most {max} are read)"
            )));
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version))
                .map_err(|e| self.protocol_error(&format!("sent an undecodable header: {e}")))?;
        if response_header.correlation_id != correlation_id {
            return Err(self.protocol_error(&format!(
                "answered correlation id {} to request {correlation_id}",
                response_header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| {
            self.protocol_error(&format!(
                "sent an undecodable {} v{version} response: {e}",
                api_name::<R>()
            ))
        })
    }

    fn protocol_error(&self, what: &str) -> Error {
        Error::Unavailable(format!("broker {} {what}", self.addr))
    }
}

/// `[length][header][body]` for one request.
fn encode_frame<R: Encodable>(
    header: &RequestHeader,
    header_version: i16,
    req: &R,
    version: i16,
) -> Result<Bytes> {
    let encode = || -> anyhow::Result<Bytes> {
        let size = header.compute_size(header_version)? + req.compute_size(version)?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size as i32);
        header.encode(&mut buf, header_version)?;
        req.encode(&mut buf, version)?;
        Ok(buf.freeze())
    };
    encode().map_err(|e| Error::Internal(format!("encoding a Kafka request: {e}")))
}

fn unreachable(addr: &str, why: &str) -> Error {
    Error::Unavailable(format!(
        "cannot reach the cluster's broker at {addr}: {why}; retry shortly"
    ))
}

/// The name of `R`'s API, e.g. `DescribeGroups`.
fn api_name<R: Request>() -> String {
    match ApiKey::try_from(R::KEY) {
        Ok(key) => format!("{key:?}"),
        Err(_) => format!("API {}", R::KEY),
    }
}

/// A Kafka error code's name and number, e.g. `GroupAuthorizationFailed (30)`.
pub(crate) fn kafka_error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e} ({code})"),
        None => "no error (0)".to_string(),
    }
}
