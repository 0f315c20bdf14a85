-- Outbound webhook deliveries (issue 9, "Outbound notifications"). Written only through
-- src/notifications/sql.ts; sending is the `notification.deliver` job (src/notifications/deliver.ts).
--
-- A transactional outbox: the row and its job are inserted inside the transaction that makes the
-- state change they announce, so a rolled-back change leaves no delivery behind, and a committed one
-- always has its job. The secret that signs a delivery is never stored: the webhook is named here,
-- its URL and secret come from the config (by env reference) when the job runs.
CREATE TABLE notification_deliveries (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  -- notifications.webhooks[].name at the time of the event.
  webhook       text        NOT NULL,
  event_type    text        NOT NULL,
  -- What the event is about: a deletion id, a GC run id, a policy id.
  subject       text        NOT NULL,
  registry      text,
  teams         text[]      NOT NULL DEFAULT '{}',
  summary       text        NOT NULL,
  -- The event as emitted ({type, subject, registry, teams, summary, data}); the body of every attempt
  -- is rendered from it and created_at, so retries send the same bytes.
  payload       jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  state         text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  -- HTTP attempts made so far (across redeliveries), the last answer's status (null after a
  -- network error) and what went wrong last.
  attempts      integer     NOT NULL DEFAULT 0,
  last_status   integer,
  last_error    text,
  -- The job sending it now (a redelivery enqueues a new one).
  job_id        uuid,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz,
  failed_at     timestamptz,
  CONSTRAINT notification_deliveries_delivered_at
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);

COMMENT ON TABLE notification_deliveries IS
  'Outbound webhook deliveries: one row per (event, matching webhook); pending, delivered or failed.';

-- Listing (GET /v1/notifications/deliveries): newest first, optionally by webhook, state or type.
CREATE INDEX notification_deliveries_created ON notification_deliveries (created_at DESC, id DESC);
CREATE INDEX notification_deliveries_webhook_created
  ON notification_deliveries (webhook, created_at DESC, id DESC);
CREATE INDEX notification_deliveries_failed
  ON notification_deliveries (created_at DESC, id DESC) WHERE state = 'failed';

-- Least privilege (see 002): the service role reads, adds and updates deliveries.
--
--   GRANT SELECT, INSERT, UPDATE ON notification_deliveries TO regent_app;
