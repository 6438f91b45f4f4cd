-- Fetch state is kept as a snapshot (source_cursors.cursor) and the deltas written
-- since, in order (api_client::StateChains); a new snapshot deletes them.
CREATE TABLE IF NOT EXISTS source_cursor_deltas (
    source_id TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    delta     TEXT   NOT NULL,
    PRIMARY KEY (source_id, seq)
);
