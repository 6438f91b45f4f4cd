-- Workers sharing sources: who claimed each source last (commits under older claims are
-- refused), and each worker's last report for the group view.
CREATE TABLE IF NOT EXISTS source_leases (
    source_id  TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    epoch      BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_members (
    group_id  TEXT   NOT NULL,
    worker_id TEXT   NOT NULL,
    report    TEXT   NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (group_id, worker_id)
);
