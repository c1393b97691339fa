-- Ruvon schema, version 4 (SQLite): the lease on a run, and the token of its last commit.
--
-- Non-destructive: three nullable columns and a partial index. SQLite has no ADD COLUMN IF NOT
-- EXISTS: the migration runner skips an ADD COLUMN whose column exists already. The same
-- columns as 0004_leases.postgres.sql.

-- Who drives the run right now, and until when (UTC ISO text, like every time). NULL: nobody.
ALTER TABLE workflow_executions ADD COLUMN lease_owner TEXT;
ALTER TABLE workflow_executions ADD COLUMN lease_expires_at TEXT;
-- The token of the commit that wrote the row last (see 0004_leases.postgres.sql).
ALTER TABLE workflow_executions ADD COLUMN commit_token TEXT;

-- The zombie scanner's search for expired leases reads only the rows that hold one.
CREATE INDEX IF NOT EXISTS idx_workflow_executions_lease
    ON workflow_executions (lease_expires_at) WHERE lease_owner IS NOT NULL;
