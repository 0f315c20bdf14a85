-- Retention policies (issue 8): rules evaluated per repository, previewed, and run by schedule or
-- on demand. A run never deletes anything itself: it files a deletion request through the same
-- plan, governance, approval and audit path as a person would.

CREATE TABLE retention_policies (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,99}$'),
  -- The owning team; NULL for a global policy, which only admins manage.
  team          text,
  registry      text        NOT NULL,
  repositories  text[]      NOT NULL CHECK (cardinality(repositories) > 0),
  -- {"rules": [...], "default": "keep" | "expire"}: see src/retention/rules.ts.
  rules         jsonb       NOT NULL,
  -- Stricter blast-radius limits than the configured ones: {"maxShare": 0.3, "maxCount": 50}.
  guards        jsonb       NOT NULL DEFAULT '{}',
  schedule      text,
  mode          text        NOT NULL CHECK (mode IN ('propose', 'auto')),
  enabled       boolean     NOT NULL DEFAULT true,
  version       integer     NOT NULL DEFAULT 1,
  created_by    text        NOT NULL,
  updated_by    text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  -- Deleting a policy keeps it (and its runs) for the record; names are free again.
  deleted_at    timestamptz
);

CREATE UNIQUE INDEX retention_policies_name ON retention_policies (name) WHERE deleted_at IS NULL;
CREATE INDEX retention_policies_scheduled ON retention_policies (id)
  WHERE deleted_at IS NULL AND enabled AND schedule IS NOT NULL;

-- Previews and runs. `expired` holds what was matched for deletion (repository, digest, tags,
-- bytes), so the next preview or run can say what changed.
CREATE TABLE retention_runs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  policy_id       uuid        NOT NULL REFERENCES retention_policies (id),
  policy_version  integer     NOT NULL,
  kind            text        NOT NULL CHECK (kind IN ('preview', 'run')),
  trigger         text        NOT NULL CHECK (trigger IN ('schedule', 'manual', 'preview')),
  -- The cron slot a scheduled run fired for: UNIQUE, so a slot runs once across replicas.
  slot            timestamptz,
  state           text        NOT NULL CHECK (state IN (
                    'queued', 'running', 'previewed', 'nothing', 'guarded', 'proposed', 'executing',
                    'failed')),
  requested_by    text        NOT NULL,
  override_guards boolean     NOT NULL DEFAULT false,
  counts          jsonb,
  expired         jsonb,
  guard           jsonb,
  deletion_id     uuid        REFERENCES deletion_requests (id),
  job_id          uuid,
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  UNIQUE (policy_id, slot)
);

CREATE INDEX retention_runs_policy_created ON retention_runs (policy_id, created_at DESC, id DESC);

-- Warnings sent ahead of a scheduled run, once per slot.
CREATE TABLE retention_warnings (
  policy_id  uuid        NOT NULL REFERENCES retention_policies (id),
  slot       timestamptz NOT NULL,
  sent_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (policy_id, slot)
);

-- Least privilege (see 002): the service role reads, adds and updates policies and runs.
--
--   GRANT SELECT, INSERT, UPDATE ON retention_policies, retention_runs, retention_warnings TO regent_app;
