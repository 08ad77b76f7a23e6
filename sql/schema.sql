-- Influencer (达人) crawling and management system: MySQL 8.0+ / MariaDB 10.6+ schema.
--
-- The seed's five tables keep the seed's column names and types; columns after a
-- "-- guarantees" line are what the invariants need (leases, fences, quota days,
-- exactly-once export bookkeeping). Every statement is idempotent: applying this
-- file twice is safe.
--
-- This file is the readable, complete current schema. Databases are created and upgraded by
-- the numbered migrations in sql/migrations/, which `python -m influencers db init` applies in
-- order and records (`db status` shows them); tests/integration/test_migrations.py keeps what
-- they build equal to this file. A schema change is a new migration plus the same change here.

CREATE TABLE IF NOT EXISTS accounts (
    id                  INT          NOT NULL AUTO_INCREMENT,
    username            VARCHAR(255) NOT NULL COLLATE utf8mb4_bin,
    password            VARCHAR(255) NOT NULL COMMENT 'Fernet token, never plaintext',
    status              ENUM('idle', 'ingesting', 'exporting', 'disabled') NOT NULL DEFAULT 'idle',
    daily_export_limit  INT          NOT NULL DEFAULT 4000,
    today_export_count  INT          NOT NULL DEFAULT 0,
    last_used_at        DATETIME     NULL,
    -- guarantees
    quota_date          DATE         NULL COMMENT 'local day today_export_count belongs to',
    cooldown_until      DATETIME(6)  NULL COMMENT 'not handed out before this (UTC)',
    held_by_task_id     BIGINT       NULL COMMENT 'the task that took it; only that task frees it',
    status_reason       VARCHAR(255) NULL,
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY uq_accounts_username (username),
    KEY ix_accounts_status (status, last_used_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS tasks (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    task_type           ENUM('ingestion', 'export') NOT NULL,
    domain              VARCHAR(100) NOT NULL,
    status              ENUM('pending', 'in_progress', 'paused', 'completed', 'failed') NOT NULL DEFAULT 'pending',
    progress_marker     VARCHAR(255) NULL COMMENT 'ingestion: page=N (last committed); export: last_id=N',
    progress_cursor     TEXT         NULL COMMENT 'ingestion on a cursor platform: the cursor of the page after progress_marker; NULL: page 1 or a page platform',
    assigned_account_id INT          NULL,
    created_at          DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at          DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    -- guarantees
    parent_id           BIGINT       NULL COMMENT 'start_crawl parent of a page-range subtask',
    is_parent           BOOLEAN      NOT NULL DEFAULT FALSE COMMENT 'a start_crawl job: never claimed itself',
    page_from           INT          NULL,
    page_to             INT          NULL COMMENT 'NULL: until the listing ends',
    export_limit        INT          NULL COMMENT 'export: at most this many rows; NULL: all pending',
    export_format       ENUM('csv', 'jsonl', 'xlsx') NULL,
    export_filter       TEXT         NULL COMMENT 'export: JSON of the selection''s filters (core/selection.py); NULL: every pending row of the domain',
    exported_count      INT          NOT NULL DEFAULT 0,
    claimed_by          VARCHAR(191) NULL COMMENT 'worker id holding the claim',
    lease_token         CHAR(32)     NULL COMMENT 'fence: changes on every claim',
    lease_expires_at    DATETIME(6)  NULL COMMENT 'UTC, database clock',
    heartbeat_at        DATETIME(6)  NULL,
    attempts            INT          NOT NULL DEFAULT 0,
    max_attempts        INT          NOT NULL DEFAULT 5,
    not_before          DATETIME(6)  NULL COMMENT 'claimable again from then (UTC); a paused task with NULL waits for an operator',
    last_error          TEXT         NULL,
    dispatch_job        VARCHAR(64)  NULL COMMENT 'the Scrapyd job this subtask was handed to; NULL: not out on dispatch',
    dispatch_node       VARCHAR(255) NULL COMMENT 'the Scrapyd node URL (no credentials) of that job',
    dispatched_at       DATETIME(6)  NULL COMMENT 'when it was handed over (UTC)',
    PRIMARY KEY (id),
    KEY ix_tasks_claim (task_type, is_parent, status, id),
    KEY ix_tasks_domain (domain, task_type, status),
    KEY ix_tasks_parent (parent_id),
    KEY ix_tasks_lease (status, lease_expires_at),
    KEY ix_tasks_finished (status, updated_at),
    CONSTRAINT fk_tasks_account FOREIGN KEY (assigned_account_id) REFERENCES accounts (id),
    CONSTRAINT fk_tasks_parent FOREIGN KEY (parent_id) REFERENCES tasks (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per committed listing page, written in the pipeline's batch transaction. No foreign
-- keys to tasks and accounts (the application never deletes either): their checks held shared
-- locks on the task and account rows through the whole batch, so a task handing its account
-- back or ending waited for it (bench/README.md, ingestion). sql/migrations/post-apply.py drops
-- them from databases made before.
CREATE TABLE IF NOT EXISTS ingestion_logs (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    task_id             BIGINT       NOT NULL,
    account_id          INT          NULL,
    domain              VARCHAR(100) NOT NULL,
    page_number         INT          NOT NULL,
    ingested_count      INT          NOT NULL DEFAULT 0,
    start_time          DATETIME     NOT NULL,
    end_time            DATETIME     NOT NULL,
    -- guarantees
    source_url          VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_ingestion_logs_task_page (task_id, page_number),
    KEY ix_ingestion_logs_day (start_time, domain, account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per export batch. A batch is reserved (rows, file name and quota
-- recorded), then its file is published, then it is finalized; see exporter/batches.py.
CREATE TABLE IF NOT EXISTS export_logs (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    task_id             BIGINT       NOT NULL,
    account_id          INT          NOT NULL,
    domain              VARCHAR(100) NOT NULL,
    exported_count      INT          NOT NULL DEFAULT 0,
    file_path           VARCHAR(255) NOT NULL,
    start_time          DATETIME     NOT NULL,
    end_time            DATETIME     NULL,
    -- guarantees
    state               ENUM('reserved', 'published') NOT NULL DEFAULT 'reserved',
    quota_date          DATE         NOT NULL COMMENT 'the quota day the rows were counted on',
    first_id            BIGINT       NULL,
    last_id             BIGINT       NULL,
    export_format       ENUM('csv', 'jsonl', 'xlsx') NOT NULL DEFAULT 'csv',
    PRIMARY KEY (id),
    KEY ix_export_logs_state (state),
    KEY ix_export_logs_day (start_time, domain, account_id),
    KEY ix_export_logs_task (task_id),
    CONSTRAINT fk_export_logs_task FOREIGN KEY (task_id) REFERENCES tasks (id),
    CONSTRAINT fk_export_logs_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- export_log_id is 0, not NULL, until a batch reserves the row: setting a NULL BIGINT grows
-- the row and InnoDB re-inserts it, three times the cost of an in-place update on the
-- exporter's hottest statement (bench/README.md). 0 has no parent row, so there is no foreign
-- key; the exporter sets it only to a batch it inserted in the same transaction.
-- It has no index either: a batch's rows are found through its domain and id range
-- (export_logs.first_id/last_id) on ix_influencers_export_scan, so a reserve updates the row in
-- place and a new row pays for one secondary index less (+17% in an SQL-only export prototype).
-- sql/migrations/post-apply.py upgrades a database made with the earlier nullable column.
CREATE TABLE IF NOT EXISTS influencers (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    nickname            VARCHAR(255) NULL,
    uid                 VARCHAR(255) NOT NULL COLLATE utf8mb4_bin,
    domain              VARCHAR(100) NOT NULL,
    source_page         VARCHAR(255) NULL,
    raw_data            JSON         NULL,
    status              ENUM('pending_export', 'exported') NOT NULL DEFAULT 'pending_export',
    ingested_at         DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ingestion_log_id    BIGINT       NULL,
    -- guarantees
    updated_at          DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    export_log_id       BIGINT       NOT NULL DEFAULT 0 COMMENT 'the export batch (file) this row went to; 0: none yet',
    crawl_count         INT          NOT NULL DEFAULT 1 COMMENT 'pages that listed it; an upsert always changes it, so its affected rows say how many it inserted',
    -- the 达人 data: typed fields, search terms, growth (core/store.py writes them, core/search.py reads them)
    fans                BIGINT       NULL COMMENT 'the adapter''s typed fields (SiteAdapter.profile); NULL: not given',
    region              VARCHAR(100) NULL,
    tags                JSON         NULL COMMENT 'JSON array of texts',
    has_contact         BOOLEAN      NOT NULL DEFAULT FALSE,
    profile_url         VARCHAR(1024) NULL,
    search_terms        TEXT         NULL COMMENT 'nickname bigrams and tags as fulltext tokens (core/searchterms.py); NULL: not filled yet',
    fans_log_id         BIGINT       NOT NULL DEFAULT 0 COMMENT 'the ingestion log of the crawl that last changed fans (it wrote a history row)',
    growth_7d           BIGINT       NULL COMMENT 'fans minus fans 7 days before the last crawl (or when first seen)',
    growth_30d          BIGINT       NULL,
    fans_first          BIGINT       NULL COMMENT 'the first fans seen (its first history row); NULL: none yet, or stored before 0013',
    PRIMARY KEY (id),
    UNIQUE KEY uq_influencers_uid (uid),
    KEY ix_influencers_export_scan (domain, status, id),
    KEY ix_influencers_ingestion_log (ingestion_log_id),
    KEY ix_influencers_fans (fans, id, domain, nickname),
    KEY ix_influencers_growth_7d (growth_7d, id),
    KEY ix_influencers_growth_30d (growth_30d, id),
    FULLTEXT KEY ft_influencers_search (search_terms),
    CONSTRAINT fk_influencers_ingestion_log FOREIGN KEY (ingestion_log_id) REFERENCES ingestion_logs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every task and account state change, with its reason: the history `task show` reads.
CREATE TABLE IF NOT EXISTS events (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    entity              ENUM('task', 'account') NOT NULL,
    entity_id           BIGINT       NOT NULL,
    event               VARCHAR(40)  NOT NULL COMMENT 'created, claimed, paused, resumed, completed, failed, account_switched, ...',
    from_status         VARCHAR(20)  NULL,
    to_status           VARCHAR(20)  NULL,
    task_id             BIGINT       NULL,
    account_id          INT          NULL,
    worker              VARCHAR(191) NULL,
    reason              VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    KEY ix_events_entity (entity, entity_id, id),
    KEY ix_events_task (task_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One credential key per deployment: the key's check value (an HMAC-SHA256 of a fixed text under
-- the key, never the key itself) in the only row (id 1). The first process that needs the key
-- records it; a process with another key refuses to add or decrypt account passwords.
CREATE TABLE IF NOT EXISTS secret_key_check (
    id                  TINYINT      NOT NULL COMMENT 'always 1: one key per deployment',
    check_value         VARCHAR(100) NOT NULL COLLATE utf8mb4_bin COMMENT 'hmac-sha256:<hex> of a fixed text under the key; never the key',
    recorded_by         VARCHAR(255) NULL COMMENT 'where the recording process took its key from (variable or key file path) and its host',
    recorded_at         DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- An identity per account, so a platform cannot link the accounts of one pool: the proxy it is
-- reached through, its user agent and extra headers, and the proxy's health as the crawl saw it
-- (influencers/core/identities.py). The proxy URL may carry `user:password@`, so it is stored as
-- a Fernet token like accounts.password; proxy_host is what is shown. No foreign key to accounts,
-- as on ingestion_logs: the application never deletes an account, and the key's check would lock
-- the account row, which the pool locks to hand the account out.
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

-- What an account may do on the platform a day and a minute (an operator's values; the site
-- adapter may declare defaults) and the listing pages it read today, counted in the pipeline's
-- batch transaction. Owned by influencers/core/budgets.py.
CREATE TABLE IF NOT EXISTS account_budgets (
    account_id          INT          NOT NULL COMMENT 'the accounts row',
    pages_per_day       INT          NULL COMMENT 'listing pages a local day at most; NULL: the adapter default, or none',
    requests_per_minute INT          NULL COMMENT 'requests a minute at most; NULL: the adapter default, or none',
    pages_today         INT          NOT NULL DEFAULT 0 COMMENT 'listing pages committed on pages_date',
    pages_date          DATE         NULL COMMENT 'the local day (INFLUENCERS_TZ) pages_today counts',
    PRIMARY KEY (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Rows per domain and export status, kept in the transactions that change them (the pipeline's
-- batch, the exporter's finalize) so `status` reads a few rows instead of counting millions.
-- Each writer adds to one of 16 shards per domain (by connection id); readers sum them. Owned by
-- influencers/core/counts.py; `python -m influencers db recount` rebuilds it from influencers.
CREATE TABLE IF NOT EXISTS domain_counts (
    domain              VARCHAR(100) NOT NULL,
    shard               TINYINT      NOT NULL COMMENT 'CONNECTION_ID() % 16 of the writer',
    pending             BIGINT       NOT NULL DEFAULT 0 COMMENT 'rows with status pending_export',
    exported            BIGINT       NOT NULL DEFAULT 0 COMMENT 'rows with status exported',
    PRIMARY KEY (domain, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- An influencer's fans each time a crawl saw them change (and when it was first seen), written in
-- the pipeline's batch transaction: growth over 7 and 30 days and the detail view's chart read it.
-- Owned by influencers/core/store.py (writes) and influencers/core/search.py (reads).
CREATE TABLE IF NOT EXISTS influencer_history (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    influencer_id       BIGINT       NOT NULL,
    recorded_at         DATETIME     NOT NULL COMMENT 'the end of the page''s crawl (UTC)',
    fans                BIGINT       NOT NULL,
    ingestion_log_id    BIGINT       NOT NULL COMMENT 'the page that saw it',
    PRIMARY KEY (id),
    KEY ix_influencer_history_time (influencer_id, recorded_at, fans)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Searches an operator saved by name (`search --save NAME`), to list or export again. Owned by
-- influencers/core/selection.py.
CREATE TABLE IF NOT EXISTS saved_searches (
    name                VARCHAR(100) NOT NULL,
    filter              TEXT         NOT NULL COMMENT 'JSON of the search''s filters (core/selection.py)',
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A fill of the typed fields of rows stored before a migration added them: `db init` goes on
-- after next_id and deletes the row when done. Owned by influencers/core/profilefill.py.
CREATE TABLE IF NOT EXISTS profile_fill (
    id                  TINYINT      NOT NULL COMMENT 'always 1',
    next_id             BIGINT       NOT NULL DEFAULT 0 COMMENT 'the fill goes on after this influencers id',
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Schedules: periodic start_crawls and start_exports fired by `python -m influencers scheduler`,
-- and one row per occurrence handled (started, skipped or failed): the unique key and the
-- schedule's row lock make each occurrence fire once. Owned by influencers/core/schedules.py.
CREATE TABLE IF NOT EXISTS schedules (
    id                  INT          NOT NULL AUTO_INCREMENT,
    name                VARCHAR(100) NOT NULL,
    kind                ENUM('crawl', 'export') NOT NULL COMMENT 'crawl: a periodic start_crawl; export: a periodic start_export',
    domain              VARCHAR(100) NOT NULL,
    cron                VARCHAR(100) NOT NULL COMMENT 'five-field cron expression, in INFLUENCERS_TZ local time',
    pages               INT          NULL COMMENT 'crawl: pages 1..pages',
    split               INT          NULL COMMENT 'crawl: pages per subtask; NULL: the default',
    export_limit        INT          NULL COMMENT 'export: at most this many rows; NULL: all pending',
    export_format       ENUM('csv', 'jsonl', 'xlsx') NULL,
    missed              ENUM('run-once', 'skip') NOT NULL DEFAULT 'run-once' COMMENT 'occurrences missed while no scheduler ran: fired once, or skipped',
    paused              BOOLEAN      NOT NULL DEFAULT FALSE,
    next_run_at         DATETIME     NOT NULL COMMENT 'the next occurrence not yet handled (UTC)',
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY ix_schedules_due (paused, next_run_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS schedule_runs (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    schedule_id         INT          NOT NULL,
    occurrence_at       DATETIME     NOT NULL COMMENT 'the occurrence (UTC); a catch-up row: the latest it stands for',
    occurrences         INT          NOT NULL DEFAULT 1 COMMENT 'occurrences this row stands for (more than 1: missed ones)',
    outcome             ENUM('started', 'skipped', 'failed') NOT NULL,
    task_id             BIGINT       NULL COMMENT 'the task it started (a crawl''s parent)',
    reason              VARCHAR(255) NULL,
    fired_by            VARCHAR(191) NULL COMMENT 'the scheduler process',
    fired_at            DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY ux_schedule_runs_occurrence (schedule_id, occurrence_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Counters that only grow, read by GET /metrics: pages and rows ingested per domain, rows exported
-- and rate-limited and captcha responses per account, lease recoveries. Added to by the
-- transactions that do the work (responses: flushed by the crawl that saw them), sharded by writer
-- like domain_counts. Owned by influencers/core/tallies.py.
CREATE TABLE IF NOT EXISTS tallies (
    name                VARCHAR(40)  NOT NULL COMMENT 'pages_ingested, rows_ingested, rows_exported, rate_limited, captchas, lease_recoveries',
    label               VARCHAR(100) NOT NULL DEFAULT '' COLLATE utf8mb4_bin COMMENT 'a domain or an account id; empty: the whole system',
    shard               TINYINT      NOT NULL COMMENT 'CONNECTION_ID() % 16 of the writer',
    value               BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Alerts: each cause (kind, subject) once per window, with its delivery attempts; alert_watch says
-- how far the alerter has read the events. Owned by influencers/core/alerts.py.
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

-- The platform or a Scrapyd node unreachable, as the crawl or dispatcher that sees it reports it;
-- the row goes when it answers again. Owned by influencers/core/outages.py.
CREATE TABLE IF NOT EXISTS outages (
    source              VARCHAR(191) NOT NULL COLLATE utf8mb4_bin COMMENT 'what is unreachable: platform <url> or scrapyd <url>, never credentials',
    reporter            VARCHAR(191) NOT NULL COLLATE utf8mb4_bin COMMENT 'the process that sees it',
    started_at          DATETIME(6)  NOT NULL COMMENT 'UTC, database clock',
    seen_at             DATETIME(6)  NOT NULL COMMENT 'the last time the reporter found it still unreachable',
    problem             VARCHAR(255) NULL,
    PRIMARY KEY (source, reporter)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
