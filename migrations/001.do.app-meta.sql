-- Facts about this Regent installation that every replica shares (first start, schema notes).
CREATE TABLE app_meta (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO app_meta (key, value) VALUES ('installed_at', to_jsonb(now()));
