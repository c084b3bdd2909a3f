-- Users who sign in with an OpenID Provider (docs/CONFIG.md, `[[oidc]]`): the provider's
-- identity, the pair (issuer, sub), never the email alone, linked to a user; and what the
-- provider gave at its last login, so that the next one replaces those roles and claims and
-- keeps the ones an admin added.
CREATE TABLE portcullis_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,                 -- the provider's `sub`
    username   TEXT NOT NULL,                 -- lower-cased, as in portcullis_users
    roles      TEXT NOT NULL,                 -- JSON: the roles the provider gave
    claims     TEXT NOT NULL,                 -- JSON: the names of the claims it set
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX portcullis_identities_username ON portcullis_identities (username);
