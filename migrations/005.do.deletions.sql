-- Governed deletion requests (design.md "Deletion request", "Approval"), their approvals, and
-- legal holds. A request's plan is stored as resolved and never changes: approvals are bound to
-- its hash, and execution works from it.

CREATE TABLE deletion_requests (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  registry               text        NOT NULL,
  verb                   text        NOT NULL CHECK (verb IN ('untag', 'delete-manifest', 'delete-image')),
  targets                jsonb       NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
  reason                 text        NOT NULL CHECK (length(btrim(reason)) > 0),
  ticket                 text,
  requester_subject      text        NOT NULL,
  requester_on_behalf_of text,
  -- The person the request is for (the on-behalf-of subject, else the caller): self-approval and
  -- cancellation compare against it.
  requester_person       text        NOT NULL,
  requester_teams        text[]      NOT NULL DEFAULT '{}',
  requester_channel      text        NOT NULL,
  state                  text        NOT NULL CHECK (state IN (
                           'planned', 'awaiting_approval', 'approved', 'queued', 'running', 'succeeded',
                           'partially_failed', 'failed', 'rejected', 'cancelled', 'expired', 'restored')),
  plan                   jsonb       NOT NULL,
  plan_hash              text        NOT NULL CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
  approval_requirement   jsonb       NOT NULL,
  owning_teams           text[]      NOT NULL DEFAULT '{}',
  -- Idempotency-Key scoped to the calling subject, with a fingerprint of the body it came with: a
  -- retry returns the same request, the same key with another body is refused.
  idempotency_key        text,
  request_fingerprint    text,
  expires_at             timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX deletion_requests_idempotency
  ON deletion_requests (requester_subject, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX deletion_requests_created ON deletion_requests (created_at DESC, id DESC);
CREATE INDEX deletion_requests_state ON deletion_requests (state, created_at DESC);
CREATE INDEX deletion_requests_expiry ON deletion_requests (expires_at) WHERE state = 'awaiting_approval';
CREATE INDEX deletion_requests_owning_teams ON deletion_requests USING gin (owning_teams);

CREATE TABLE deletion_approvals (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deletion_id           uuid        NOT NULL REFERENCES deletion_requests (id),
  approver_subject      text        NOT NULL,
  approver_on_behalf_of text,
  approver_person       text        NOT NULL,
  approved_as           text        NOT NULL CHECK (approved_as IN ('admin', 'owning-team-approver')),
  decision              text        NOT NULL CHECK (decision IN ('approve', 'reject')),
  comment               text,
  plan_hash             text        NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  -- One decision per person per request: a second click is a conflict, not a second approval.
  UNIQUE (deletion_id, approver_person)
);

CREATE TABLE legal_holds (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  registry    text        NOT NULL,
  repository  text        NOT NULL,
  digest      text,
  reason      text        NOT NULL CHECK (length(btrim(reason)) > 0),
  until       timestamptz NOT NULL,
  created_by  text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  lifted_at   timestamptz,
  lifted_by   text
);

CREATE INDEX legal_holds_active ON legal_holds (until) WHERE lifted_at IS NULL;
