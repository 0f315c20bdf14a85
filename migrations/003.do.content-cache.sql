-- Manifests and image configs are immutable by digest, so once fetched they are kept here and a
-- restart does not fetch them again. Keyed by repository too: a digest seen in one repository says
-- nothing about whether another repository (with other permissions) holds it.
CREATE TABLE content_cache (
  registry    text        NOT NULL,
  repository  text        NOT NULL,
  digest      text        NOT NULL,
  kind        text        NOT NULL CHECK (kind IN ('manifest', 'config')),
  media_type  text        NOT NULL,
  bytes       bytea       NOT NULL,
  fetched_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (registry, repository, digest)
);
