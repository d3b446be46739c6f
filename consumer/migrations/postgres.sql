-- The processed-message table of evbus idempotent consumers, PostgreSQL
-- (consumer.NewProcessed, Processed.Migrate). One row per message a
-- consumer group has handled: the row is inserted in the handler's own
-- transaction, so it exists exactly when the handler's effects do.
-- message_id is the id in the form consumer.ProcessedID gives (any id fits).
-- For another table name, pass it to consumer.TableName and run
-- Processed.MigrationSQL, which writes this file with that name (quoted,
-- in lower case, its index named after it).
CREATE TABLE IF NOT EXISTS "evbus_processed" (
    consumer_group text NOT NULL,
    message_id     text NOT NULL,
    processed_at   timestamptz NOT NULL,
    PRIMARY KEY (consumer_group, message_id)
);

-- Processed.Cleanup deletes by age.
CREATE INDEX IF NOT EXISTS "evbus_processed_time_idx" ON "evbus_processed" (processed_at);
