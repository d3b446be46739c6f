-- evbus outbox, SQLite. Outbox.Migrate runs the same statements, with the
-- configured table name in place of evbus_outbox. Instants are integer
-- microseconds since the Unix epoch.
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
CREATE TABLE IF NOT EXISTS evbus_outbox_relays (
    shard         INTEGER PRIMARY KEY,
    holder        TEXT NOT NULL DEFAULT '',
    since         INTEGER,
    idle          INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    last_error_at INTEGER
);
