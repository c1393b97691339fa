-- Ruvon schema, version 2 (PostgreSQL): the idempotency hash and the indexes of the query API.
--
-- Non-destructive: one nullable column and new indexes; existing rows keep their values (their
-- idempotency_hash is NULL). Every statement is IF NOT EXISTS, like 0001. The same columns as
-- 0002_query_api.sqlite.sql.

-- A digest of the request that took idempotency_key, stored as given and compared by the
-- caller when the key is reused.
ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS idempotency_hash TEXT;

-- list_workflows / count_workflows filter on status, workflow_type, owner_id, org_id,
-- parent_execution_id and a created_at range, newest first. 0001 indexes all of them but
-- org_id: (status|workflow_type|owner_id, created_at), (parent_execution_id), (created_at).
CREATE INDEX IF NOT EXISTS ix_workflow_executions_org_created ON workflow_executions (org_id, created_at);
