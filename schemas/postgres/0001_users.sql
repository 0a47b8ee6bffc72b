-- Users of topk: the control plane's root table. Provider accounts,
-- encrypted tokens, schedules and crawl runs reference it (later migrations).
CREATE TABLE IF NOT EXISTS users (
    id           text PRIMARY KEY
                 CHECK (length(id) BETWEEN 1 AND 128 AND position('|' in id) = 0),
    display_name text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
