-- 0012: the fans order carries each row's domain and nickname: ix_influencers_fans becomes
-- (fans, id, domain, nickname). A search walks that order (influencers/core/search.py); with the
-- domain and the nickname in the index it tests them on index entries and reads only the matches
-- from the table, where it read every walked row. The id stays second, so the index still sorts
-- by (fans, id), the keyset pages' order. Rebuilt online (readers and writers go on).
-- transactional: false

ALTER TABLE influencers DROP INDEX ix_influencers_fans,
    ADD KEY ix_influencers_fans (fans, id, domain, nickname), ALGORITHM=INPLACE, LOCK=NONE;
