-- 0011: operations. tallies: counters that only grow (pages and rows ingested per domain, rows
-- exported and rate-limited and captcha responses per account, lease recoveries), added to by the
-- transactions that do the work (or, for responses, flushed by the crawl that saw them), read by
-- GET /metrics (influencers/core/tallies.py); filled here once from the logs and events so far.
-- alerts: each alert once per cause and window, with its delivery attempts; alert_watch: how far
-- the alerter has read the events; outages: the platform or a Scrapyd node unreachable, as the
-- crawl or the dispatcher that sees it says (influencers/core/alerts.py, core/outages.py).
-- transactional: false

CREATE TABLE IF NOT EXISTS tallies (
    name                VARCHAR(40)  NOT NULL COMMENT 'pages_ingested, rows_ingested, rows_exported, rate_limited, captchas, lease_recoveries',
    label               VARCHAR(100) NOT NULL DEFAULT '' COLLATE utf8mb4_bin COMMENT 'a domain or an account id; empty: the whole system',
    shard               TINYINT      NOT NULL COMMENT 'CONNECTION_ID() % 16 of the writer',
    value               BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO tallies (name, label, shard, value)
    SELECT 'pages_ingested', domain, 0, COUNT(*) FROM ingestion_logs GROUP BY domain;
INSERT IGNORE INTO tallies (name, label, shard, value)
    SELECT 'rows_ingested', domain, 0, SUM(ingested_count) FROM ingestion_logs GROUP BY domain;
INSERT IGNORE INTO tallies (name, label, shard, value)
    SELECT 'rows_exported', CAST(account_id AS CHAR), 0, SUM(exported_count) FROM export_logs
    WHERE state = 'published' GROUP BY account_id;
INSERT IGNORE INTO tallies (name, label, shard, value)
    SELECT 'lease_recoveries', '', 0, COUNT(*) FROM events WHERE entity = 'task' AND event = 'recovered' HAVING COUNT(*) > 0;

CREATE TABLE IF NOT EXISTS alerts (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    kind                VARCHAR(40)  NOT NULL COMMENT 'account_disabled, pool_exhausted, task_failed, crawl_empty, quota_spent, worker_gone, node_gone, database_unreachable, platform_unreachable',
    subject             VARCHAR(191) NOT NULL DEFAULT '' COLLATE utf8mb4_bin COMMENT 'what it is about (an account, a task, a node); empty: the whole system',
    window_start        DATETIME     NOT NULL COMMENT 'the window (UTC) in which this cause is alerted once',
    message             VARCHAR(1024) NOT NULL,
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    attempts            INT          NOT NULL DEFAULT 0 COMMENT 'deliveries tried',
    next_attempt_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'not tried again before this (UTC); also the lease of a delivery under way',
    delivered_at        DATETIME(6)  NULL COMMENT 'NULL: not delivered yet',
    last_error          VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY ux_alerts_cause (kind, subject, window_start),
    KEY ix_alerts_delivery (delivered_at, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS alert_watch (
    id                  TINYINT      NOT NULL COMMENT 'always 1',
    last_event_id       BIGINT       NOT NULL DEFAULT 0 COMMENT 'events up to this id have been looked at',
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO alert_watch (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;

CREATE TABLE IF NOT EXISTS outages (
    source              VARCHAR(191) NOT NULL COLLATE utf8mb4_bin COMMENT 'what is unreachable: platform <url> or scrapyd <url>, never credentials',
    reporter            VARCHAR(191) NOT NULL COLLATE utf8mb4_bin COMMENT 'the process that sees it',
    started_at          DATETIME(6)  NOT NULL COMMENT 'UTC, database clock',
    seen_at             DATETIME(6)  NOT NULL COMMENT 'the last time the reporter found it still unreachable',
    problem             VARCHAR(255) NULL,
    PRIMARY KEY (source, reporter)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
