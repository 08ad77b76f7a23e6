-- 0003: subtasks out on dispatch when the database was upgraded keep their dispatch. Before 0002
-- the record was the events table: a subtask was out while its latest event among the dispatch
-- events was `dispatched`, whose reason reads 'scrapyd job <job id> on <node URL>'. Only rows
-- with no dispatch yet are filled, so running it again changes nothing.
-- transactional: false

UPDATE tasks t
JOIN events e ON e.id = (
    SELECT x.id FROM events x
    WHERE x.entity = 'task' AND x.entity_id = t.id
      AND x.event IN ('dispatched', 'undispatched', 'claimed', 'recovered', 'released', 'paused', 'resumed')
    ORDER BY x.id DESC LIMIT 1)
SET t.dispatch_job = SUBSTRING_INDEX(SUBSTRING_INDEX(e.reason, ' ', 3), ' ', -1),
    t.dispatch_node = SUBSTRING_INDEX(SUBSTRING_INDEX(e.reason, ' on ', -1), ' ', 1),
    t.dispatched_at = e.created_at
WHERE e.event = 'dispatched' AND e.reason LIKE 'scrapyd job % on %'
  AND t.task_type = 'ingestion' AND NOT t.is_parent AND t.status IN ('pending', 'paused')
  AND t.dispatch_job IS NULL;
