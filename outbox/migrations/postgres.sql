-- evbus outbox, PostgreSQL. Outbox.Migrate runs the same statements, with
-- the configured table name in place of evbus_outbox.
--
-- evbus_outbox holds the rows not yet published, and only them, so that
-- its primary key is its one index: the relay reads it in that order, and
-- an Enqueue writes one index entry. Once Kafka acknowledged a row, the
-- relay moves it to evbus_outbox_published (kept for the retention) or
-- deletes it (DeleteOnPublish).
CREATE TABLE IF NOT EXISTS "evbus_outbox" (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    shard      integer NOT NULL,
    topic      text NOT NULL,
    key        bytea NOT NULL,
    value      bytea,
    headers    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (shard, id)
);
-- The outbox table's columns (without its identity), and when Kafka
-- acknowledged the row.
CREATE TABLE IF NOT EXISTS "evbus_outbox_published" (
    LIKE "evbus_outbox",
    published_at timestamptz NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS "evbus_outbox_published_at" ON "evbus_outbox_published" (published_at);
-- Each shard's relay. stuck lists the rows it cannot publish, as JSON
-- (outbox.StuckRow); tables of an earlier evbus get the column with
-- ALTER TABLE "evbus_outbox_relays" ADD COLUMN stuck text NOT NULL DEFAULT ''
CREATE TABLE IF NOT EXISTS "evbus_outbox_relays" (
    shard         integer PRIMARY KEY,
    holder        text NOT NULL DEFAULT '',
    since         timestamptz,
    idle          boolean NOT NULL DEFAULT false,
    last_error    text NOT NULL DEFAULT '',
    last_error_at timestamptz,
    stuck         text NOT NULL DEFAULT ''
);
