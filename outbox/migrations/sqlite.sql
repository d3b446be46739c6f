-- evbus outbox, SQLite. Outbox.Migrate runs the same statements, with the
-- configured table name in place of evbus_outbox. Instants are integer
-- microseconds since the Unix epoch.
--
-- evbus_outbox holds the rows not yet published, and only them; once Kafka
-- acknowledged a row, the relay moves it to evbus_outbox_published (kept
-- for the retention) or deletes it (DeleteOnPublish). AUTOINCREMENT: an id
-- is never used twice, even after the rows with the largest ids left.
CREATE TABLE IF NOT EXISTS "evbus_outbox" (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    shard      INTEGER NOT NULL,
    topic      TEXT NOT NULL,
    key        BLOB NOT NULL,
    value      BLOB,
    headers    BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS "evbus_outbox_published" (
    id           INTEGER PRIMARY KEY,
    shard        INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    key          BLOB NOT NULL,
    value        BLOB,
    headers      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "evbus_outbox_published_at" ON "evbus_outbox_published" (published_at);
-- Each shard's relay. stuck lists the rows it cannot publish, as JSON
-- (outbox.StuckRow); tables of an earlier evbus get the column with
-- ALTER TABLE "evbus_outbox_relays" ADD COLUMN stuck TEXT NOT NULL DEFAULT ''
CREATE TABLE IF NOT EXISTS "evbus_outbox_relays" (
    shard         INTEGER PRIMARY KEY,
    holder        TEXT NOT NULL DEFAULT '',
    since         INTEGER,
    idle          INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    last_error_at INTEGER,
    stuck         TEXT NOT NULL DEFAULT ''
);
