-- Slack request signatures already accepted (issue 9, chatops). Slack signs each request with
-- HMAC-SHA256 over its timestamp and body; a captured request would verify again if sent twice,
-- so each accepted signature is remembered for as long as its timestamp is acceptable (5 minutes).
-- The primary key makes the check atomic across replicas: INSERT … ON CONFLICT DO NOTHING that
-- inserts nothing is a replay. Written only through src/chatops/sql.ts.
CREATE TABLE slack_request_signatures (
  signature   text        PRIMARY KEY,
  received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX slack_request_signatures_received_at ON slack_request_signatures (received_at);
