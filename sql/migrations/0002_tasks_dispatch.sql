-- 0002: the dispatcher's state on tasks (`python -m influencers dispatch`): which Scrapyd job on
-- which node a subtask was handed to, and when. One ALTER TABLE, so the three columns come
-- together or not at all (MySQL commits DDL by itself; there is no transaction to roll back).
-- transactional: false

ALTER TABLE tasks
    ADD COLUMN dispatch_job  VARCHAR(64)  NULL COMMENT 'the Scrapyd job this subtask was handed to; NULL: not out on dispatch' AFTER last_error,
    ADD COLUMN dispatch_node VARCHAR(255) NULL COMMENT 'the Scrapyd node URL (no credentials) of that job' AFTER dispatch_job,
    ADD COLUMN dispatched_at DATETIME(6)  NULL COMMENT 'when it was handed over (UTC)' AFTER dispatch_node;
