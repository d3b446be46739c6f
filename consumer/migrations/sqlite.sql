-- The processed-message table of evbus idempotent consumers, SQLite
-- (consumer.NewProcessed, Processed.Migrate). One row per message a
-- consumer group has handled: the row is inserted in the handler's own
-- transaction, so it exists exactly when the handler's effects do.
-- message_id is the id in the form consumer.ProcessedID gives (any id fits).
-- processed_at is in microseconds since the Unix epoch (sqldb.SQLite).
-- For another table name, pass it to consumer.TableName and run
-- Processed.MigrationSQL, which writes this file with that name (quoted,
-- in lower case, its index named after it).
CREATE TABLE IF NOT EXISTS "evbus_processed" (
    consumer_group TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    processed_at   INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, message_id)
) WITHOUT ROWID;

-- Processed.Cleanup deletes by age.
CREATE INDEX IF NOT EXISTS "evbus_processed_time_idx" ON "evbus_processed" (processed_at);
