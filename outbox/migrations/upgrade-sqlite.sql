-- evbus outbox, SQLite: upgrades the tables of an evbus from before the
-- published rows' table, where published rows stayed in evbus_outbox with
-- published_at set, beside attempts and last_error columns, keeping every
-- row. Outbox.Migrate runs it, in its transaction, when evbus_outbox has a
-- published_at column: the statements above the "after" line, then
-- sqlite.sql, then the rest. Stop the earlier relay first: it reads
-- published_at.
CREATE TEMP TABLE evbus_upgrading_published AS SELECT id, shard, topic, key, value, headers, created_at, published_at FROM "evbus_outbox" WHERE published_at IS NOT NULL;
DELETE FROM "evbus_outbox" WHERE published_at IS NOT NULL;
DROP INDEX "evbus_outbox_pending";
DROP INDEX "evbus_outbox_published";
ALTER TABLE "evbus_outbox" DROP COLUMN published_at;
ALTER TABLE "evbus_outbox" DROP COLUMN attempts;
ALTER TABLE "evbus_outbox" DROP COLUMN last_error;
-- after
INSERT INTO "evbus_outbox_published" SELECT * FROM evbus_upgrading_published;
DROP TABLE evbus_upgrading_published;
