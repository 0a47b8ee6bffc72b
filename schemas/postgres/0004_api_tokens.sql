-- Users' API tokens (issue 13): the credential of the ListenBrainz api
-- (Authorization: Token <token>), with which a scrobbler submits a user's
-- listens. A user may have several (one per device or client) and a
-- users row of their own without a provider account.
--
-- token_hash is the SHA-256 of the token; the token itself is shown once,
-- when it is made (store/postgres/tokens.go), and never stored. A fast
-- hash is right here, unlike for passwords: a token is a random UUID v4,
-- 122 random bits, so no dictionary or brute force gets anywhere near it
-- whatever the hash costs, and a fast one keeps every authenticated
-- request to one index lookup. prefix is the token's first 8 characters,
-- shown in listings so that a person can tell their tokens apart.
-- A revoked token keeps its row (revoked_at set) for the listing; the
-- user's deletion removes them all.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           bigserial   PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- last authenticated use, written at most once a minute per token
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id, id);
