-- Service accounts, API keys, plans, cells and logical clusters. Same rules as 0001:
-- TEXT and BIGINT only, times as Unix milliseconds, ids made by the application.

CREATE TABLE service_accounts (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- As in Confluent Cloud, a service account's name is unique in its organisation.
    UNIQUE (organization_id, display_name)
);
CREATE INDEX service_accounts_org_page ON service_accounts (organization_id, created_at, id);

-- Limits of a cluster kind, versioned: a change in the configured limits adds a version,
-- and each cluster keeps the version it was created (or last resized) with. Dedicated
-- rows are per CKU. Units are those of proto ClusterLimits; 0 means no limit.
CREATE TABLE plans (
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    ingress_bytes_per_sec BIGINT NOT NULL,
    egress_bytes_per_sec BIGINT NOT NULL,
    max_partitions BIGINT NOT NULL,
    max_connections BIGINT NOT NULL,
    connection_attempts_per_sec BIGINT NOT NULL,
    requests_per_sec BIGINT NOT NULL,
    max_message_bytes BIGINT NOT NULL,
    partition_mutations_per_5min BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, version)
);

-- The cells the control plane was configured with, and what they last reported.
CREATE TABLE cells (
    id TEXT PRIMARY KEY,
    -- Comma-separated gRPC addresses of the cell's controller voters.
    addresses TEXT NOT NULL,
    -- Kora's cell load in millionths (0..1_000_000) at last_seen_at; -1 before any report.
    load_millionths BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- No foreign key: an environment with live clusters cannot be deleted (checked by the
    -- store), and a DELETING cluster outlives nothing the user can see.
    environment_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    availability TEXT NOT NULL,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- 0 for every kind but Dedicated.
    cku BIGINT NOT NULL,
    plan_version BIGINT NOT NULL,
    -- PROVISIONING, PROVISIONED, FAILED, or DELETING (hidden from the API; removed once
    -- the cell has dropped the logical cluster).
    phase TEXT NOT NULL,
    -- Why the cluster FAILED; empty otherwise.
    reason TEXT NOT NULL,
    -- The cell chosen for it; empty until placed. Recorded before CreateLogicalCluster
    -- is sent, so a crash cannot leave an unrecorded logical cluster in a cell.
    cell_id TEXT NOT NULL,
    bootstrap TEXT NOT NULL,
    -- Bumped when kind or CKUs change; the reconciler pushes the limits of spec_generation
    -- and records it in applied_generation.
    spec_generation BIGINT NOT NULL,
    applied_generation BIGINT NOT NULL,
    -- Reconciler backoff: failed attempts so far and when to try next.
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clusters_env_page ON clusters (organization_id, environment_id, created_at, id);
CREATE INDEX clusters_phase ON clusters (phase, next_attempt_at);

CREATE TABLE api_keys (
    -- The key itself (the SASL/PLAIN username); not secret.
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- A user (u-...) or service account (sa-...) of the organisation.
    owner_id TEXT NOT NULL,
    -- A cluster (lkc-...) for a cluster key; empty for a Cloud API key.
    resource_id TEXT NOT NULL,
    -- Hex SHA-256 of the secret; the secret itself is shown once and never stored.
    secret_sha256 TEXT NOT NULL,
    -- ACTIVE, or REVOKED (deleted by the user; kept until its cell has dropped it).
    state TEXT NOT NULL,
    -- 1 when the key's cell holds what `state` says (present when ACTIVE, absent when
    -- REVOKED); Cloud API keys are always 1.
    synced BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX api_keys_org_page ON api_keys (organization_id, created_at, id);
CREATE INDEX api_keys_resource ON api_keys (resource_id);
CREATE INDEX api_keys_owner ON api_keys (owner_id);
CREATE INDEX api_keys_sync ON api_keys (synced, next_attempt_at);
