-- Uploaded history imports (issue 14): POST /v1/users/{user}/imports
-- keeps the upload in a spool file of the api copy that took it (host,
-- spool) and runs it there; this row is its status for
-- GET /v1/users/{user}/imports/{id} on any copy. after is the checkpoint:
-- the position (file in the archive, record index) of the last record
-- Kafka acknowledged, so that the copy that took the upload resumes an
-- import a restart interrupted where it stopped (imports/uploads).
-- counts holds the report so far (per file: read, accepted, skipped and
-- refused by reason, examples; sent; dead letters).
CREATE TABLE IF NOT EXISTS imports (
    id          text        PRIMARY KEY,
    user_id     text        NOT NULL,
    file_name   text        NOT NULL,
    bytes       bigint      NOT NULL,
    state       text        NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    host        text        NOT NULL,
    spool       text        NOT NULL,
    after       jsonb,
    counts      jsonb       NOT NULL DEFAULT '{}',
    error       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS imports_user ON imports (user_id, created_at);
CREATE INDEX IF NOT EXISTS imports_running ON imports (host) WHERE state = 'running';
