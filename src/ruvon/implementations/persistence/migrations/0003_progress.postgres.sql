-- Ruvon schema, version 3 (PostgreSQL): the engine's progress document of a workflow.
--
-- Non-destructive: one column with a default; existing rows get the empty document '{}'.
-- IF NOT EXISTS, like 0001 and 0002. The same column as 0003_progress.sqlite.sql.

-- An opaque JSON document owned by the engine (per-step statuses, the last step's result...),
-- written by every commit like state and metadata.
ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS progress JSONB NOT NULL DEFAULT '{}'::jsonb;
