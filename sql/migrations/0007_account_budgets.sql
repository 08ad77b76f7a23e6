-- 0007: what an account may do on the platform a day and a minute, where the platform's limits are
-- known (an operator's values; the site adapter may declare defaults), and what it did today, so
-- the pool stops using an account before the platform's cap instead of meeting it as a 403.
-- pages_today is counted in the pipeline's batch transaction with the pages it covers
-- (influencers/core/budgets.py owns the table). One CREATE TABLE: safe to run again.
-- transactional: false

CREATE TABLE IF NOT EXISTS account_budgets (
    account_id          INT          NOT NULL COMMENT 'the accounts row',
    pages_per_day       INT          NULL COMMENT 'listing pages a local day at most; NULL: the adapter default, or none',
    requests_per_minute INT          NULL COMMENT 'requests a minute at most; NULL: the adapter default, or none',
    pages_today         INT          NOT NULL DEFAULT 0 COMMENT 'listing pages committed on pages_date',
    pages_date          DATE         NULL COMMENT 'the local day (INFLUENCERS_TZ) pages_today counts',
    PRIMARY KEY (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
