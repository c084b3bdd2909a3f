-- Reset and verification tokens, and the audit trail (docs/CONFIG.md, `[mail]` and `[audit]`).
-- A token is kept only as its SHA-256 digest; a newer token of one purpose voids the older.
CREATE TABLE portcullis_tokens (
    digest     TEXT PRIMARY KEY NOT NULL,     -- SHA-256 of the token, hex
    purpose    TEXT NOT NULL,                 -- 'reset' or 'verify'
    username   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portcullis_tokens_user ON portcullis_tokens (username, purpose);

-- Users are found by their email claim (compared lower-cased) for forgotten passwords.
CREATE INDEX portcullis_users_email ON portcullis_users (lower(json_extract(claims, '$.email')));

-- Every audit event, as the log has it: never a token, a password or a key.
CREATE TABLE portcullis_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    result     TEXT,
    reason     TEXT,
    subject    TEXT,
    username   TEXT,
    client_ip  TEXT,
    user_agent TEXT,
    request_id TEXT,
    route      TEXT
);
CREATE INDEX portcullis_audit_subject ON portcullis_audit (subject, id);
CREATE INDEX portcullis_audit_username ON portcullis_audit (username, id);
CREATE INDEX portcullis_audit_event ON portcullis_audit (event, id);
CREATE INDEX portcullis_audit_at ON portcullis_audit (at);
