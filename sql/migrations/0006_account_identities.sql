-- 0006: an identity per account, so a platform cannot link the accounts of one pool: the proxy it
-- is reached through, its user agent and extra headers, and the proxy's health as the crawl saw
-- it (influencers/core/identities.py owns the table). The proxy URL may carry `user:password@`,
-- so it is stored as a Fernet token like accounts.password; proxy_host is what is shown. No
-- foreign key to accounts, as on ingestion_logs: the application never deletes an account, and
-- the key's check would lock the account row, which the pool locks to hand the account out.
-- One CREATE TABLE: safe to run again.
-- transactional: false

CREATE TABLE IF NOT EXISTS account_identities (
    account_id          INT          NOT NULL COMMENT 'the accounts row',
    proxy_url           TEXT         NULL COMMENT 'Fernet token of the proxy URL (may hold credentials), never plaintext',
    proxy_host          VARCHAR(255) NULL COMMENT 'scheme://host:port of the proxy, no credentials: what is shown',
    user_agent          VARCHAR(512) NULL,
    headers             TEXT         NULL COMMENT 'JSON object of extra request headers',
    proxy_failures      INT          NOT NULL DEFAULT 0 COMMENT 'consecutive failures through the proxy',
    proxy_error         VARCHAR(255) NULL COMMENT 'the last failure, credentials masked',
    proxy_failed_at     DATETIME(6)  NULL COMMENT 'when the last failure happened (UTC)',
    updated_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'when an operator last changed the identity (UTC)',
    PRIMARY KEY (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
