-- SCRAM-SHA-256/512 verifiers of each cluster API key's secret (JSON, made at creation when
-- the secret is known; see src/scram.rs). Empty for Cloud API keys and keys made before.
ALTER TABLE api_keys ADD COLUMN scram TEXT NOT NULL DEFAULT '';
