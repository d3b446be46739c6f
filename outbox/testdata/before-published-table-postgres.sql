-- evbus outbox, PostgreSQL. Outbox.Migrate runs the same statements, with
-- the configured table name in place of evbus_outbox.
CREATE TABLE IF NOT EXISTS evbus_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shard        integer NOT NULL,
    topic        text NOT NULL,
    key          bytea NOT NULL,
    value        bytea,
    headers      bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX IF NOT EXISTS evbus_outbox_pending ON evbus_outbox (shard, id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS evbus_outbox_published ON evbus_outbox (published_at) WHERE published_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS evbus_outbox_relays (
    shard         integer PRIMARY KEY,
    holder        text NOT NULL DEFAULT '',
    since         timestamptz,
    idle          boolean NOT NULL DEFAULT false,
    last_error    text NOT NULL DEFAULT '',
    last_error_at timestamptz
);
