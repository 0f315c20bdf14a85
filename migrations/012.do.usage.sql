-- In-use awareness: what clusters and inventories run or reference, per source, and how each
-- source's syncs went. Written only through src/usage/sql.ts.

-- One row per place an image is run or referenced. A pod container gives one row with the digest
-- it runs (from status imageID) and the tag its spec names; a workload template gives the digest or
-- the tag its image reference names. `tag` is set only when the reference pulls by tag (a reference
-- naming a digest pulls that digest, whatever tag it also names).
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
  -- The workload a pod (or a ReplicaSet, or a Job) belongs to, e.g. Deployment api, so that a
  -- verdict can say "deploy/api, 3 pods" instead of listing every pod.
  owner_kind    text,
  owner_name    text,
  -- true when a pod runs this digest (its imageID); false for references in specs and templates.
  running       boolean     NOT NULL DEFAULT false,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT usage_references_digest_or_tag CHECK (digest IS NOT NULL OR tag IS NOT NULL),
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
