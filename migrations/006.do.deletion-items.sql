-- Execution of approved deletions (design.md "Plan", "Restore"; reliability R1, R7, R12).
-- Each plan item becomes a row that moves pending → deleted | skipped | failed exactly once, with
-- what a restore needs stored BEFORE anything is deleted.

CREATE TABLE deletion_items (
  deletion_id        uuid        NOT NULL REFERENCES deletion_requests (id),
  position           integer     NOT NULL,
  repository         text        NOT NULL,
  tag                text,
  digest             text        NOT NULL,
  media_type         text        NOT NULL,
  action             text        NOT NULL CHECK (action IN ('untag', 'delete-manifest', 'delete-child', 'delete-referrer')),
  vanishing_tags     text[]      NOT NULL DEFAULT '{}',
  untag_method       text,
  -- The placeholder manifest pushed onto the tag by the untag fallback, remembered before the PUT so
  -- a retry after a crash recognises the tag pointing at it and finishes the job.
  placeholder_digest text,
  state              text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'deleted', 'skipped', 'failed')),
  -- Set (and committed) just before the first DELETE for this item is sent: afterwards a 404 for
  -- the digest means our own earlier DELETE went through (its answer was lost), not "never there".
  delete_sent_at     timestamptz,
  outcome            text,
  error_code         text,
  error              text,
  attempts           integer     NOT NULL DEFAULT 0,
  -- What a restore pushes back, stored before the delete; restorable until the registry's next GC.
  restore_manifest   bytea,
  restore_media_type text,
  restore_tags       text[],
  restorable         boolean     NOT NULL DEFAULT false,
  restored_at        timestamptz,
  finished_at        timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deletion_id, position)
);

CREATE INDEX deletion_items_restorable ON deletion_items (deletion_id) WHERE restorable;

ALTER TABLE deletion_requests ADD COLUMN job_id uuid;
ALTER TABLE deletion_requests ADD COLUMN executed_at timestamptz;
