-- Ruvon schema, version 4 (PostgreSQL): the lease on a run, and the token of its last commit.
--
-- Non-destructive: three nullable columns and a partial index. IF NOT EXISTS, like 0001-0003.
-- The same columns as 0004_leases.sqlite.sql.

-- Who drives the run right now, and until when (the database's clock). NULL: nobody.
ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS lease_owner TEXT;
ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMPTZ;
-- The token of the commit that wrote the row last: a commit whose outcome is unknown (the
-- connection dropped after it was sent) is recognised by it on retry.
ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS commit_token TEXT;

-- The zombie scanner's search for expired leases reads only the rows that hold one.
CREATE INDEX IF NOT EXISTS idx_workflow_executions_lease
    ON workflow_executions (lease_expires_at) WHERE lease_owner IS NOT NULL;
