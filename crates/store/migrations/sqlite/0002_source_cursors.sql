CREATE TABLE IF NOT EXISTS source_cursors (
    source_id  TEXT   PRIMARY KEY,
    cursor     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
