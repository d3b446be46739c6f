-- The outbox table of evbus before the published rows' table, PostgreSQL, as
-- outbox/migrations made it (the relays' table has not changed since): the
-- tables TestUpgradeKeepsEveryRow upgrades.
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
