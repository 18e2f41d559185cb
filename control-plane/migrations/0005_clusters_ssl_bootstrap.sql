-- The cluster's SASL_SSL bootstrap (`host:port,...`) when its cell's brokers have TLS
-- listeners; empty otherwise. `bootstrap` stays the SASL_PLAINTEXT one (the control plane's
-- own Kafka clients use it inside the network); tenants are shown SASL_SSL when there is one.
ALTER TABLE clusters ADD COLUMN ssl_bootstrap TEXT NOT NULL DEFAULT '';
