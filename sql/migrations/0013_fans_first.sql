-- 0013: an influencer's first fans seen, on its row (influencers.fans_first), set when the row is
-- stored with fans (or first given them): the growth of the pipeline's batch falls back to it
-- when the history is younger than 7 or 30 days, where it looked the first history row up twice a
-- row. Rows stored before keep NULL and the batch looks their first fans up as before.
-- The table's FULLTEXT index rules out an instant or online ADD COLUMN: the table is rebuilt with
-- writes held (reads go on), about as long as copying it (minutes at millions of rows; see
-- bench/README.md). Upgrade with the crawlers stopped.
-- transactional: false

ALTER TABLE influencers
    ADD COLUMN fans_first BIGINT NULL COMMENT 'the first fans seen (its first history row); NULL: none yet, or stored before 0013';
