-- 0010: schedules, periodic `start_crawl`s and `start_export`s fired by `python -m influencers
-- scheduler` (influencers/core/schedules.py), and the record of each occurrence: started, skipped
-- (previous run unfinished, or missed while no scheduler ran) or failed. The unique key on
-- (schedule_id, occurrence_at) and the schedule's row lock make each occurrence fire once,
-- whatever number of schedulers run. Two CREATE TABLEs: safe to run again.
-- transactional: false

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
