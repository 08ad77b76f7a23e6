-- 0008: costs flat in the data. Rows per domain and export status are kept in domain_counts by
-- the transactions that change them (influencers/core/counts.py), filled here once from the rows;
-- influencers.crawl_count lets the pipeline's upsert say how many rows it inserted; an index on
-- (status, updated_at) finds the most recently finished tasks without sorting them all.
-- Upgrade with the crawlers and exporters stopped, or run `python -m influencers db recount`
-- afterwards: rows written by an older release meanwhile are not counted.
-- ADD COLUMN at the end of a table is instant in MariaDB 10.3+ and MySQL 8.0.
-- transactional: false

ALTER TABLE influencers
    ADD COLUMN crawl_count INT NOT NULL DEFAULT 1 COMMENT 'pages that listed it; an upsert always changes it, so its affected rows say how many it inserted' AFTER export_log_id;

ALTER TABLE tasks ADD KEY ix_tasks_finished (status, updated_at);

CREATE TABLE IF NOT EXISTS domain_counts (
    domain              VARCHAR(100) NOT NULL,
    shard               TINYINT      NOT NULL COMMENT 'CONNECTION_ID() % 16 of the writer',
    pending             BIGINT       NOT NULL DEFAULT 0 COMMENT 'rows with status pending_export',
    exported            BIGINT       NOT NULL DEFAULT 0 COMMENT 'rows with status exported',
    PRIMARY KEY (domain, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO domain_counts (domain, shard, pending, exported)
    SELECT domain, 0, SUM(status = 'pending_export'), SUM(status = 'exported') FROM influencers GROUP BY domain;
