-- Registry events (issue 8): push and pull times per digest and per tag, from the notifications a
-- registry sends to POST /v1/registries/{registry}/events, and the time Regent first saw a tag.
-- Written only through src/registry-events/sql.ts; retention policies read them.

-- Event ids already taken in. Registries deliver at least once (distribution retries an envelope
-- until it gets a 2xx), so a redelivered envelope is recognised here and changes nothing. Rows are
-- pruned after a while: the activity upserts are idempotent (LEAST/GREATEST), so an event
-- redelivered after its id was pruned still cannot move a time the wrong way.
CREATE TABLE registry_event_ids (
  registry    text        NOT NULL,
  event_id    text        NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (registry, event_id)
);
CREATE INDEX registry_event_ids_received ON registry_event_ids (registry, received_at);

-- Per manifest digest: the event timestamps (the registry's clock, not ours), so events delivered
-- out of order still give the right first and last times.
CREATE TABLE registry_digest_activity (
  registry      text        NOT NULL,
  repository    text        NOT NULL,
  digest        text        NOT NULL,
  first_push_at timestamptz,
  last_push_at  timestamptz,
  last_pull_at  timestamptz,
  PRIMARY KEY (registry, repository, digest)
);

-- Per tag: `digest` is the one most recently pushed onto the tag (by event timestamp); NULL while
-- only pulls of the tag have been seen.
CREATE TABLE registry_tag_activity (
  registry      text        NOT NULL,
  repository    text        NOT NULL,
  tag           text        NOT NULL,
  digest        text,
  first_push_at timestamptz,
  last_push_at  timestamptz,
  last_pull_at  timestamptz,
  PRIMARY KEY (registry, repository, tag)
);

-- The first time Regent saw a tag (listing it), for registries that send no events: the stand-in
-- for a push time. The first sighting wins; later ones never move it.
CREATE TABLE registry_tag_sightings (
  registry              text        NOT NULL,
  repository            text        NOT NULL,
  tag                   text        NOT NULL,
  first_seen_at         timestamptz NOT NULL DEFAULT now(),
  digest_at_first_sight text        NOT NULL,
  PRIMARY KEY (registry, repository, tag)
);
