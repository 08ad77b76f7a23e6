-- 0004: one credential key per deployment. The table holds the key's check value (an HMAC-SHA256
-- of a fixed text under the key, never the key itself) in its only row (id 1): the first process
-- that needs the key records it, and a process with another key refuses to add or decrypt account
-- passwords (influencers/core/credentials.py). One CREATE TABLE: safe to run again.
-- transactional: false

CREATE TABLE IF NOT EXISTS secret_key_check (
    id                  TINYINT      NOT NULL COMMENT 'always 1: one key per deployment',
    check_value         VARCHAR(100) NOT NULL COLLATE utf8mb4_bin COMMENT 'hmac-sha256:<hex> of a fixed text under the key; never the key',
    recorded_by         VARCHAR(255) NULL COMMENT 'where the recording process took its key from (variable or key file path) and its host',
    recorded_at         DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
