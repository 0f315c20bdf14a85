-- The audit log: append-only and hash-chained (design.md "Audit event", R15-R17).
--
-- Every row carries its position in one gap-free chain (`seq`), the hash of the row before it
-- (`prev_hash`) and its own hash: sha256(prev_hash || canonical JSON of its fields), computed by
-- src/audit/writer.ts and recomputed by src/audit/verify.ts. Editing or deleting a row therefore
-- breaks the chain at that row, and the triggers below refuse both to the app and to the owner.

CREATE TABLE audit_events (
  -- Storage identity only; seq is the chain position. An identity skips values when a writer's
  -- transaction rolls back, which is why the chain cannot use it.
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  seq            bigint NOT NULL UNIQUE CHECK (seq > 0),
  occurred_at    timestamptz NOT NULL,
  action         text NOT NULL CHECK (action <> ''),
  actor_subject  text NOT NULL,
  on_behalf_of   text,
  actor_teams    text[] NOT NULL DEFAULT '{}',
  channel        text NOT NULL,
  source_ip      text,
  user_agent     text,
  request_id     text,
  registry       text,
  repository     text,
  tag            text,
  digest         text,
  -- No foreign key yet: deletions arrive in a later migration, and an audit row must outlive
  -- whatever it describes anyway.
  deletion_id    uuid,
  outcome        text NOT NULL CHECK (outcome <> ''),
  details        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  prev_hash      text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash           text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  schema_version integer NOT NULL CHECK (schema_version > 0)
);

COMMENT ON TABLE audit_events IS
  'Append-only, hash-chained audit log. Written only through src/audit/writer.ts; UPDATE, DELETE and TRUNCATE are refused by triggers.';

-- Listing is keyset-paginated by seq (descending) under optional filters: each filter gets an
-- index that ends in seq so the newest-first scan stops after one page.
CREATE INDEX audit_events_registry_repository_seq ON audit_events (registry, repository, seq);
CREATE INDEX audit_events_actor_subject_seq ON audit_events (actor_subject, seq);
CREATE INDEX audit_events_on_behalf_of_seq ON audit_events (on_behalf_of, seq) WHERE on_behalf_of IS NOT NULL;
CREATE INDEX audit_events_action_seq ON audit_events (action, seq);
CREATE INDEX audit_events_deletion_id_seq ON audit_events (deletion_id, seq) WHERE deletion_id IS NOT NULL;
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

-- Append-only. Privileges are the first line (R15: the service's role has INSERT and SELECT only,
-- see the end of this file); these triggers are the second, and they also stop the table's owner.
-- UPDATE and DELETE are refused per row, TRUNCATE (which fires no row triggers) per statement.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit events are never changed or removed; append a new event instead.';
END
$$;

CREATE TRIGGER audit_events_no_update_or_delete
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate
  BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- The chain head serialises writers. A writer locks this one row (SELECT … FOR UPDATE), takes
-- seq = last_seq + 1 and prev_hash = last_hash, inserts its event and moves the head, all in the
-- caller's transaction; the next writer waits on the row lock until that transaction ends, then
-- reads the new head (or the old one, if it rolled back: no gap, no fork).
--
-- Chosen over "advisory lock + read the newest audit row" because:
--   * the head is also a checkpoint inside the database: verification compares the chain with it,
--     so deleting the newest rows (which leaves no hole to find) is still detected;
--   * a row lock's conflict is visible and scoped to this table (pg_locks names the relation),
--     where an advisory key is a number every other feature must know not to reuse;
--   * under REPEATABLE READ a stale snapshot makes FOR UPDATE fail with a serialisation error
--     instead of reading an old "newest row".
-- The price is that the service's role needs UPDATE on this table (not on audit_events); the
-- trigger below lets an UPDATE only advance the head by exactly one, and UNIQUE (seq) on
-- audit_events stops a forked chain even if the head were misused.
CREATE TABLE audit_chain_head (
  id        boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_seq  bigint NOT NULL CHECK (last_seq >= 0),
  last_hash text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$')
);

COMMENT ON TABLE audit_chain_head IS
  'The newest link of the audit_events chain; locked by every audit writer to serialise appends.';

-- The genesis link: the first event's prev_hash is 64 zeros.
INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION audit_chain_head_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.id = OLD.id AND NEW.last_seq = OLD.last_seq + 1 THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain_head may only advance by one (from % to %)', OLD.last_seq, NEW.last_seq
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'audit_chain_head cannot be removed: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_chain_head_advance_only
  BEFORE UPDATE OR DELETE ON audit_chain_head
  FOR EACH ROW EXECUTE FUNCTION audit_chain_head_guard();

CREATE TRIGGER audit_chain_head_no_truncate
  BEFORE TRUNCATE ON audit_chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_guard();

-- Running the service with least privilege (R15). The owner applies migrations
-- (`DATABASE_URL=<owner url> npm run migrate`); the service then runs as a role that can add to
-- and read the audit log but never change it. As the owner, after migrating:
--
--   CREATE ROLE regent_app LOGIN PASSWORD '…';
--   GRANT CONNECT ON DATABASE regent TO regent_app;
--   GRANT USAGE ON SCHEMA public TO regent_app;
--   -- the audit log: add and read, nothing else (no UPDATE, DELETE, TRUNCATE)
--   GRANT SELECT, INSERT ON audit_events TO regent_app;
--   -- the writer locks and advances the chain head (its trigger allows +1 steps only)
--   GRANT SELECT, UPDATE ON audit_chain_head TO regent_app;
--   -- the identity column needs no sequence grant: INSERT on the table is enough.
--
-- and the other tables as each later migration documents, e.g.
--
--   GRANT SELECT ON schemaversion, app_meta TO regent_app;
--
-- Check it: as regent_app, `UPDATE audit_events SET outcome = 'x'` must fail with
-- "permission denied for table audit_events" (and, as the owner, with "audit_events is
-- append-only"). A superuser can still bypass both (session_replication_role = replica skips
-- triggers): that is what the hash chain and an exported checkpoint (`npm run audit:verify`) detect.
