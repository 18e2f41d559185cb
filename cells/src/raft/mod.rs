//! The Raft layer of the cell controller (openraft 0.9, storage v2): the type
//! configuration, the durable log, the state machine over the metadata image, and the
//! gRPC transport between voters.
//!
//! Owns consensus only. Must never depend on the controller logic (`crate::controller`):
//! it commits whatever batches of records it is given and tells the watch hub about each
//! applied entry.

pub mod frame;
pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;

use prost::Message;
use proto::cell::v1::MetadataRecord;
use serde::{Deserialize, Serialize};

/// One Raft entry's application data: a batch of `MetadataRecord`s, prost-encoded (the
/// same bytes a `MetadataUpdate.records` list would carry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub encoded: Vec<u8>,
}

/// prost wrapper used to encode a list of records as one message.
#[derive(Clone, PartialEq, prost::Message)]
struct RecordList {
    #[prost(message, repeated, tag = "1")]
    records: Vec<MetadataRecord>,
}

impl MetadataBatch {
    pub fn from_records(records: Vec<MetadataRecord>) -> Self {
        MetadataBatch {
            encoded: RecordList { records }.encode_to_vec(),
        }
    }

    pub fn records(&self) -> Result<Vec<MetadataRecord>, prost::DecodeError> {
        Ok(RecordList::decode(self.encoded.as_slice())?.records)
    }
}

/// What applying an entry answers: nothing beyond the log id openraft already returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {}

openraft::declare_raft_types!(
    /// The controller's Raft types: node ids are the `--node-id`s, a node is its gRPC
    /// address, entries carry [`MetadataBatch`]es, snapshots are byte buffers.
    pub TypeConfig:
        D = MetadataBatch,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
