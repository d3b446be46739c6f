-- The outbox table of evbus before the published rows' table, SQLite, as
-- outbox/migrations made it (the relays' table has not changed since): the
-- tables TestUpgradeKeepsEveryRow upgrades.
CREATE TABLE IF NOT EXISTS evbus_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    shard        INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    key          BLOB NOT NULL,
    value        BLOB,
    headers      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS evbus_outbox_pending ON evbus_outbox (shard, id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS evbus_outbox_published ON evbus_outbox (published_at) WHERE published_at IS NOT NULL;
