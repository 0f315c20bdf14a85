-- The durable job queue (design.md "Job", reliability R6-R10, R24). Written only through
-- src/jobs/sql.ts; the worker runtime is src/jobs/worker.ts.
--
-- A job is claimed with FOR UPDATE SKIP LOCKED and then runs under a *lease* stored in the row
-- (locked_by, locked_until), never inside an open transaction: the claim commits at once and a
-- heartbeat moves locked_until forward while the handler runs. A worker that dies stops
-- heartbeating, its lease runs out and any other worker claims the job again (attempts + 1), so a
-- crash costs at most one lease, not graphile-worker's four hours.
--
-- Rows are kept after they finish: `unique_key` is an idempotency key that must stay taken for
-- good (graphile-worker deletes finished jobs and with them its job_key, R6), and a finished job is
-- what GET /v1/jobs/{id} reports.
CREATE TABLE jobs (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  kind         text        NOT NULL CHECK (kind <> ''),
  payload      jsonb       NOT NULL DEFAULT '{}',
  state        text        NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  -- Attempts started so far: a claim adds one, a graceful release (shutdown) gives it back.
  attempts     integer     NOT NULL DEFAULT 0,
  max_attempts integer     NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  -- When a queued job becomes due: now for new jobs, now + backoff for a retry.
  run_at       timestamptz NOT NULL DEFAULT now(),
  -- The lease: which worker holds the job and until when. Set exactly while running.
  locked_by    text,
  locked_until timestamptz,
  last_error   text,
  progress     jsonb,
  result       jsonb,
  -- Jobs naming a registry share that registry's cap (jobs.registryConcurrency) across replicas.
  registry     text,
  unique_key   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  CONSTRAINT jobs_attempts_range CHECK (attempts >= 0 AND attempts <= max_attempts),
  CONSTRAINT jobs_lease_iff_running
    CHECK ((state = 'running') = (locked_by IS NOT NULL AND locked_until IS NOT NULL)),
  CONSTRAINT jobs_finished_iff_final
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

COMMENT ON TABLE jobs IS
  'Durable job queue with leases; rows are kept after they finish so unique_key stays an idempotency key.';

-- Idempotent enqueue: INSERT … ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;

-- The claim query: due queued jobs in run_at order …
CREATE INDEX jobs_queued_run_at ON jobs (run_at, id) WHERE state = 'queued';
-- … running jobs whose lease ran out (a dead worker's), and the per-registry count of running
-- jobs that the registry cap is checked against.
CREATE INDEX jobs_running_locked_until ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_running_registry ON jobs (registry) WHERE state = 'running' AND registry IS NOT NULL;

-- Listing (GET /v1/jobs…, operators): newest first, optionally by kind or registry.
CREATE INDEX jobs_created_at ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_kind_created_at ON jobs (kind, created_at DESC);
CREATE INDEX jobs_registry_created_at ON jobs (registry, created_at DESC) WHERE registry IS NOT NULL;

-- Least privilege (see 002): the service role reads, adds and updates jobs, never deletes them.
--
--   GRANT SELECT, INSERT, UPDATE ON jobs TO regent_app;
