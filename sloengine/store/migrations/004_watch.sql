-- 004: what the watcher of input folders has already taken in (path, size, mtime), so a
-- polling loop neither re-hashes unchanged files nor records a duplicate batch every poll.
CREATE TABLE watched_files (
    path        VARCHAR PRIMARY KEY,
    size_bytes  BIGINT NOT NULL,
    mtime_ns    BIGINT NOT NULL,
    sha256      VARCHAR NOT NULL,
    batch_id    BIGINT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL
);
