-- The crawler's control plane (issue "control plane and crawler").
--
-- provider_accounts: where a user's listens come from. Tokens (Spotify's
-- access and refresh tokens) are AES-256-GCM sealed by the application
-- (crawler/tokens) under TOPK_TOKEN_KEY before they reach this table: the
-- columns hold version || nonce || ciphertext, never plaintext.
CREATE TABLE IF NOT EXISTS provider_accounts (
    user_id       text        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    provider      text        NOT NULL CHECK (provider IN ('lastfm', 'spotify', 'simulated')),
    external_id   text        NOT NULL CHECK (length(external_id) BETWEEN 1 AND 256),
    access_token  bytea,
    refresh_token bytea,
    token_expiry  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- schedules: one row per user. next_run_at names the Asynq task of the
-- pending run (crawl:<user>:<unix seconds of next_run_at>), so the scheduler
-- can always rebuild Redis from this table. cursor is the provider's
-- position (Last.fm and simulated: Unix seconds of the newest published
-- listen; Spotify: Unix milliseconds) and only moves after Kafka
-- acknowledged every listen up to it.
CREATE TABLE IF NOT EXISTS schedules (
    user_id          text        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    active           boolean     NOT NULL DEFAULT true,
    interval_seconds integer     NOT NULL CHECK (interval_seconds > 0),
    next_run_at      timestamptz NOT NULL,
    cursor           bigint      NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    last_run_at      timestamptz,
    last_status      text        NOT NULL DEFAULT 'new'
                     CHECK (last_status IN ('new', 'running', 'ok', 'retrying', 'failed')),
    last_error       text        NOT NULL DEFAULT '',
    archived_task_id text        NOT NULL DEFAULT '',
    -- the lease of the crawl in progress: one crawl per user at a time,
    -- whatever Redis remembers
    running_task_id  text        NOT NULL DEFAULT '',
    running_since    timestamptz,
    pages_done       integer     NOT NULL DEFAULT 0,
    pages_total      integer     NOT NULL DEFAULT 0,
    listens_total    bigint      NOT NULL DEFAULT 0,
    possible_gaps    integer     NOT NULL DEFAULT 0,
    last_gap_at      timestamptz
);
CREATE INDEX IF NOT EXISTS schedules_active_next_run ON schedules (next_run_at) WHERE active;

-- crawl_runs: one row per attempt of a crawl task.
CREATE TABLE IF NOT EXISTS crawl_runs (
    id           bigserial   PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    task_id      text        NOT NULL,
    attempt      integer     NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    listens      integer     NOT NULL DEFAULT 0,
    outcome      text        NOT NULL DEFAULT 'running'
                 CHECK (outcome IN ('running', 'ok', 'failed', 'skipped')),
    error        text        NOT NULL DEFAULT '',
    possible_gap boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS crawl_runs_user_started ON crawl_runs (user_id, started_at DESC);
