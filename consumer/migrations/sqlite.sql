-- The processed-message table of evbus idempotent consumers, SQLite
-- (consumer.NewProcessed, Processed.Migrate). One row per message a
-- consumer group has handled: the row is inserted in the handler's own
-- transaction, so it exists exactly when the handler's effects do.
-- message_id is the id in the form consumer.ProcessedID gives (any id fits).
-- processed_at is in microseconds since the Unix epoch (sqldb.SQLite).
-- Rename evbus_processed (and its index) to use another table name, and
-- pass the same name to consumer.TableName.
CREATE TABLE IF NOT EXISTS evbus_processed (
    consumer_group TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    processed_at   INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, message_id)
) WITHOUT ROWID;

-- Processed.Cleanup deletes by age.
CREATE INDEX IF NOT EXISTS evbus_processed_time_idx ON evbus_processed (processed_at);
