-- Ruvon schema, version 3 (SQLite): the engine's progress document of a workflow.
--
-- Non-destructive: one column with a default; existing rows get the empty document '{}'.
-- SQLite has no ADD COLUMN IF NOT EXISTS: the migration runner skips an ADD COLUMN whose column
-- exists already, so a file built by hand is still adopted. The same column as
-- 0003_progress.postgres.sql.

-- An opaque JSON document owned by the engine (per-step statuses, the last step's result...),
-- written by every commit like state and metadata.
ALTER TABLE workflow_executions ADD COLUMN progress TEXT NOT NULL DEFAULT '{}';
