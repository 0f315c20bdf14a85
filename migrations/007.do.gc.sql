-- Garbage collection runs (design.md "GC run"; reliability R13, R14). Written only through
-- src/gc/sql.ts; the protocol itself is src/gc/handler.ts.
--
-- Exclusivity across replicas is the partial unique index below: a registry has at most one run
-- that is queued or running, whichever replica inserted it. While a run executes, its row is a
-- *lease* (lease_owner, lease_until) renewed by the handler, never a lock held by an open
-- transaction: the GC command can run for an hour and no transaction stays open meanwhile.
CREATE TABLE gc_runs (
  id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  registry            text        NOT NULL,
  trigger             text        NOT NULL CHECK (trigger IN ('manual', 'coalesced', 'schedule')),
  -- The subject that asked (an admin), or 'regent' for coalesced and scheduled runs.
  requested_by        text        NOT NULL,
  requested_on_behalf_of text,
  dry_run             boolean     NOT NULL DEFAULT false,
  delete_untagged     boolean     NOT NULL DEFAULT false,
  state               text        NOT NULL DEFAULT 'queued'
                                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  failed_step         text,
  error               text,
  -- One entry per step attempted: {name, attempt, startedAt, finishedAt, ok, output (excerpt)}.
  steps               jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(steps) = 'array'),
  -- What the dry run (or, without one, the GC itself) reported.
  marked_blobs        bigint,
  eligible_blobs      bigint,
  eligible_manifests  bigint,
  eligible_bytes      bigint,
  collected_blobs     bigint,
  collected_manifests bigint,
  -- Space accounting: the storage folder measured before and after (registries[].gc.storagePath),
  -- else what the executor output said it freed.
  bytes_before        bigint,
  bytes_after         bigint,
  bytes_reported_freed bigint,
  -- The executor and hook output, the last 64 KiB of it.
  log                 text        NOT NULL DEFAULT '',
  -- The job that runs this run now (a manual request taking over a queued coalesced run enqueues a
  -- new job and the old one finds itself superseded).
  job_id              uuid,
  -- Not before this time: the end of a coalescing quiet period, or of the restore window.
  not_before          timestamptz NOT NULL DEFAULT now(),
  -- Deletions that finished while this run could no longer collect them ask for another run.
  followup_after      timestamptz,
  lease_owner         text,
  lease_until         timestamptz,
  -- When the GC step began: every restorable deletion item finished before it is closed.
  gc_started_at       timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  finished_at         timestamptz,
  CONSTRAINT gc_runs_log_bounded CHECK (octet_length(log) <= 70000),
  CONSTRAINT gc_runs_finished_iff_final
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

COMMENT ON TABLE gc_runs IS
  'Garbage collection runs; at most one queued or running per registry (gc_runs_one_active).';

-- R13: one GC per registry. A second request finds this index taken (INSERT … ON CONFLICT DO
-- NOTHING) and is refused with 409 REGENT_GC_ALREADY_RUNNING, or, for coalescing, pushes the
-- queued run's not_before back instead of adding a run.
CREATE UNIQUE INDEX gc_runs_one_active ON gc_runs (registry) WHERE state IN ('queued', 'running');

-- Listing (GET /v1/gc-runs?registry=…): newest first.
CREATE INDEX gc_runs_created ON gc_runs (created_at DESC, id DESC);
CREATE INDEX gc_runs_registry_created ON gc_runs (registry, created_at DESC, id DESC);

-- Cron slots fired: each replica's timer inserts the slot it finds due; the replica whose INSERT
-- wins (ON CONFLICT DO NOTHING) enqueues the run, so a slot fires once however many replicas run.
CREATE TABLE gc_schedule_slots (
  registry  text        NOT NULL,
  slot      timestamptz NOT NULL,
  run_id    uuid        REFERENCES gc_runs (id),
  -- 'queued', or why nothing was queued (another run was already active).
  outcome   text        NOT NULL,
  fired_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (registry, slot)
);

-- Deletions of a registry finish by items; the restore window closes by item finish time.
CREATE INDEX deletion_items_restorable_finished ON deletion_items (finished_at) WHERE restorable;

-- Least privilege (see 002): the service role reads, adds and updates runs and slots.
--
--   GRANT SELECT, INSERT, UPDATE ON gc_runs, gc_schedule_slots TO regent_app;
