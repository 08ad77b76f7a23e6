-- 0009: the 达人 data itself searchable. Typed fields a site adapter maps from raw_data (fans,
-- region, tags, contact, profile URL), a fulltext index of nickname bigrams and tags, growth over
-- 7 and 30 days, the fans history, saved searches and an export task's filter. The typed fields
-- of rows stored before are filled by `python -m influencers db init` after this migration (the
-- profile_fill row scheduled here says from which id; influencers/core/profilefill.py).
-- ADD COLUMN at the end of a table is instant; the indexes are built online.
-- transactional: false

ALTER TABLE influencers
    ADD COLUMN fans BIGINT NULL COMMENT 'the adapter''s typed fields (SiteAdapter.profile); NULL: not given' AFTER crawl_count,
    ADD COLUMN region VARCHAR(100) NULL AFTER fans,
    ADD COLUMN tags JSON NULL COMMENT 'JSON array of texts' AFTER region,
    ADD COLUMN has_contact BOOLEAN NOT NULL DEFAULT FALSE AFTER tags,
    ADD COLUMN profile_url VARCHAR(1024) NULL AFTER has_contact,
    ADD COLUMN search_terms TEXT NULL COMMENT 'nickname bigrams and tags as fulltext tokens (core/searchterms.py); NULL: not filled yet' AFTER profile_url,
    ADD COLUMN fans_log_id BIGINT NOT NULL DEFAULT 0 COMMENT 'the ingestion log of the crawl that last changed fans (it wrote a history row)' AFTER search_terms,
    ADD COLUMN growth_7d BIGINT NULL COMMENT 'fans minus fans 7 days before the last crawl (or when first seen)' AFTER fans_log_id,
    ADD COLUMN growth_30d BIGINT NULL AFTER growth_7d;

ALTER TABLE influencers
    ADD KEY ix_influencers_fans (fans, id),
    ADD KEY ix_influencers_growth_7d (growth_7d, id),
    ADD KEY ix_influencers_growth_30d (growth_30d, id);

ALTER TABLE influencers ADD FULLTEXT KEY ft_influencers_search (search_terms);

CREATE TABLE IF NOT EXISTS influencer_history (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    influencer_id       BIGINT       NOT NULL,
    recorded_at         DATETIME     NOT NULL COMMENT 'the end of the page''s crawl (UTC)',
    fans                BIGINT       NOT NULL,
    ingestion_log_id    BIGINT       NOT NULL COMMENT 'the page that saw it',
    PRIMARY KEY (id),
    KEY ix_influencer_history_time (influencer_id, recorded_at, fans)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS saved_searches (
    name                VARCHAR(100) NOT NULL,
    filter              TEXT         NOT NULL COMMENT 'JSON of the search''s filters (core/selection.py)',
    created_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS profile_fill (
    id                  TINYINT      NOT NULL COMMENT 'always 1',
    next_id             BIGINT       NOT NULL DEFAULT 0 COMMENT 'the fill goes on after this influencers id',
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO profile_fill (id, next_id) SELECT 1, 0 FROM influencers LIMIT 1;

ALTER TABLE tasks
    ADD COLUMN export_filter TEXT NULL COMMENT 'export: JSON of the selection''s filters (core/selection.py); NULL: every pending row of the domain' AFTER export_format;
