-- 0005: the resume position of a task on a platform that pages with opaque cursors: the cursor
-- that fetches the page after progress_marker, moved with the marker in the pipeline's fenced
-- batch transaction (influencers/core/store.py). TEXT: real platforms' cursors run to kilobytes.
-- One ALTER TABLE (MySQL commits DDL by itself; there is no transaction to roll back).
-- transactional: false

ALTER TABLE tasks
    ADD COLUMN progress_cursor TEXT NULL COMMENT 'ingestion on a cursor platform: the cursor of the page after progress_marker; NULL: page 1 or a page platform' AFTER progress_marker;
