-- Deletion safety under change. Execution re-derives, just before each wave of DELETEs, what the
-- DELETEs would remove now and sends only what stays within the approved plan; restores never
-- re-point a tag that was pushed again since; retention judges a tag by the image it points to now.

-- When the verification that cleared an item began (its tag listing), and when its DELETE left:
-- the difference is the residual window in which a change in the registry goes unseen (the
-- registry API has no conditional delete).
ALTER TABLE deletion_items ADD COLUMN verified_at timestamptz;
ALTER TABLE deletion_items ADD COLUMN delete_issued_at timestamptz;

-- What a restore did with the item: 'restored', or 'tag_taken' when a tag it would have put back
-- points at another image now (that tag is left alone unless an admin forces it).
ALTER TABLE deletion_items ADD COLUMN restore_outcome text
  CHECK (restore_outcome IN ('restored', 'tag_taken', 'forced'));
ALTER TABLE deletion_items ADD COLUMN restore_note text;

-- A request filed again for fresh approval after its plan changed points at the one it replaces.
ALTER TABLE deletion_requests ADD COLUMN replan_of uuid REFERENCES deletion_requests (id);

-- Sightings are per (tag, digest): a tag moved onto another image is a new sighting, so "first
-- seen" describes the image the tag points to now, not the tag's first image.
ALTER TABLE registry_tag_sightings RENAME COLUMN digest_at_first_sight TO digest;
ALTER TABLE registry_tag_sightings DROP CONSTRAINT registry_tag_sightings_pkey;
ALTER TABLE registry_tag_sightings ADD PRIMARY KEY (registry, repository, tag, digest);

-- The audit chain head may advance by several events in one step, so a wave of deletion items
-- records its events with one lock of the head and one write of it. A step of more than one is
-- allowed only when every event in between is there and the newest one has the head's new hash: a
-- stronger check than a single step's, which cannot look (its event is inserted by the same
-- statement).
CREATE OR REPLACE FUNCTION audit_chain_head_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.id = OLD.id AND NEW.last_seq = OLD.last_seq + 1 THEN
      RETURN NEW;
    END IF;
    IF NEW.id = OLD.id AND NEW.last_seq > OLD.last_seq + 1
       AND (SELECT count(*) FROM audit_events WHERE seq > OLD.last_seq AND seq <= NEW.last_seq)
           = NEW.last_seq - OLD.last_seq
       AND EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
    THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain_head may only advance by one, or over events that exist (from % to %)', OLD.last_seq, NEW.last_seq
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'audit_chain_head cannot be removed: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
