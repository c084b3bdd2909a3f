-- Users, their API keys, and the change log other instances follow (docs/CONFIG.md, "Users in a database").
-- Times are Unix seconds; roles, claims, backup codes and allowed IPs are JSON text.
CREATE TABLE portcullis_users (
    username      TEXT PRIMARY KEY NOT NULL,  -- lower-cased
    subject       TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    claims        TEXT NOT NULL,
    totp_secret   TEXT,                       -- sealed with db_key
    totp_pending  TEXT,                       -- sealed; set up, not enabled yet
    backup_codes  TEXT NOT NULL,              -- SHA-256 digests, hex
    disabled      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE portcullis_api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    roles        TEXT NOT NULL,
    allowed_ips  TEXT NOT NULL,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX portcullis_api_keys_username ON portcullis_api_keys (username);

CREATE TABLE portcullis_changes (
    seq  BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,                       -- 'user' or 'key'
    name TEXT NOT NULL,                       -- the username or the key's id
    at   BIGINT NOT NULL
);
CREATE INDEX portcullis_changes_at ON portcullis_changes (at);
