//! ApiVersions, and the one table of what this broker implements. Decoding consults the
//! same table, so an API is either advertised and handled or refused before decoding.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// (API, lowest version, highest version) implemented completely.
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 10),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    // Classic consumer groups: must match `GroupCoordinator::supported_versions` (tested).
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // SASL (the SASL listener; answered by the connection, not a handler). v0 is
    // advertised because librdkafka only enables SASL when v0 is in range; clients that
    // also see SaslAuthenticate use v1 and framed tokens, and a v0 handshake (raw tokens
    // after it) is refused by closing the connection.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The implemented version range of `key`, if it is implemented at all.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

pub fn response() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    resp.finalized_features_epoch = -1;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Message, Request as _};

    /// Every advertised range must be one the codec can decode and encode.
    #[test]
    fn advertised_ranges_are_within_the_codec() {
        for (key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(
                *min >= codec.min && *max <= codec.max,
                "{key:?} {min}..{max} vs {codec}"
            );
        }
        assert_eq!(
            kafka_protocol::messages::ApiVersionsRequest::VERSIONS.max,
            4,
            "ApiVersions schema changed: review KIP-511 handling"
        );
        let _ = kafka_protocol::messages::ApiVersionsRequest::KEY;
    }

    #[test]
    fn group_ranges_match_the_coordinator() {
        for (key, min, max) in crate::group::GroupCoordinator::supported_versions() {
            assert_eq!(supported_range(key), Some((min, max)), "{key:?}");
        }
    }
}
