-- In-use awareness: what clusters and inventories run or reference, per source, and how each
-- source's syncs went. Written only through src/usage/sql.ts.

-- One row per place and image: a row names a digest (one a pod runs, from its status imageID, or
-- one a reference pins) or a tag (a reference that pulls by tag), never both: a reference naming a
-- digest pulls that digest, whatever tag it also names. Pods by tag give two rows at their
-- workload: the tag their spec names and the digest they run.
--
-- A sync replaces its source's rows in one transaction: every row it saw gets last_seen_at = the
-- transaction's now(), then the source's rows not seen are deleted. first_seen_at survives syncs.
CREATE TABLE usage_references (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source        text        NOT NULL,
  registry      text        NOT NULL,
  repository    text        NOT NULL,
  digest        text,
  tag           text,
  cluster       text        NOT NULL DEFAULT '',
  namespace     text        NOT NULL DEFAULT '',
  kind          text        NOT NULL,
  name          text        NOT NULL,
  container     text        NOT NULL DEFAULT '',
  -- The workload a ReplicaSet or a Job belongs to (Deployment api, CronJob nightly).
  owner_kind    text,
  owner_name    text,
  -- true when pods run this digest (their imageID); false for references in specs and templates.
  running       boolean     NOT NULL DEFAULT false,
  -- Pods counted here: the pods of a workload are stored at the workload (kind Deployment, name
  -- api, 3 pods), so 10,000 pods are a few thousand rows and a verdict reads "deploy/api, 3 pods".
  -- A pod no workload owns is its own place (kind Pod). 0 for templates and inventory entries.
  pods          integer     NOT NULL DEFAULT 0,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT usage_references_digest_xor_tag CHECK ((digest IS NULL) <> (tag IS NULL)),
  CONSTRAINT usage_references_place UNIQUE NULLS NOT DISTINCT
    (source, registry, repository, digest, tag, cluster, namespace, kind, name, container)
);

-- usageOf: every row naming one of the candidate digests or tags of one repository.
CREATE INDEX usage_references_digest ON usage_references (registry, repository, digest) WHERE digest IS NOT NULL;
CREATE INDEX usage_references_tag ON usage_references (registry, repository, tag) WHERE tag IS NOT NULL;
-- The end of a sync: the source's rows it did not see.
CREATE INDEX usage_references_source_seen ON usage_references (source, last_seen_at);

-- Each source's last sync. last_success_at is the START of the last successful sync: its rows
-- describe the cluster as of then, and staleness is measured from it.
CREATE TABLE usage_sources (
  name                  text        PRIMARY KEY,
  kind                  text        NOT NULL,
  last_started_at       timestamptz,
  last_finished_at      timestamptz,
  last_duration_ms      integer,
  last_outcome          text        CHECK (last_outcome IN ('succeeded', 'failed')),
  last_success_at       timestamptz,
  last_error            text,
  last_error_at         timestamptz,
  counts                jsonb       NOT NULL DEFAULT '{}'
);

-- Least privilege (see 002): syncs delete the rows they no longer see.
--
--   GRANT SELECT, INSERT, UPDATE, DELETE ON usage_references, usage_sources TO regent_app;
