CREATE TABLE IF NOT EXISTS failed_messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL UNIQUE,
    source_id      TEXT    NOT NULL,
    source_topic   TEXT    NOT NULL,
    key            BLOB,
    payload        BLOB    NOT NULL,
    payload_json   TEXT,
    headers        TEXT    NOT NULL DEFAULT '[]',
    failure_reason TEXT    NOT NULL,
    error_details  TEXT    NOT NULL DEFAULT '',
    retry_count    INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL,
    retry_at       BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS failed_messages_status_retry_at ON failed_messages (status, retry_at);
CREATE INDEX IF NOT EXISTS failed_messages_created_at ON failed_messages (created_at);
