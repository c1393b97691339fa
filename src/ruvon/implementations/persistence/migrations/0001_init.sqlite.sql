-- Ruvon schema, version 1 (SQLite).
--
-- Migrations are numbered and append-only: never edit a released file, add 0002_*.sql instead.
-- Every statement is IF NOT EXISTS so that a database built by running this file by hand is
-- adopted by the runner instead of failing on "table already exists".
--
-- SQLite conventions: JSON is TEXT written by orjson; timestamps are ISO-8601 UTC text with
-- microseconds ('2024-01-31T12:00:00.000000+00:00'), fixed width so that text order is time
-- order; booleans are INTEGER 0/1. The defaults below only serve rows written by hand: the
-- provider always supplies its own timestamps.

CREATE TABLE IF NOT EXISTS workflow_executions (
    id                    TEXT    NOT NULL PRIMARY KEY,
    -- Insertion order, the tiebreak of "newest first" when created_at values are equal.
    seq                   INTEGER NOT NULL,
    workflow_type         TEXT    NOT NULL,
    workflow_version      TEXT,
    definition_snapshot   TEXT    NOT NULL,
    state_model_path      TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    state                 TEXT    NOT NULL,
    current_step          TEXT,
    current_step_index    INTEGER NOT NULL DEFAULT 0,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    completed_steps_stack TEXT    NOT NULL DEFAULT '[]',
    saga_mode             INTEGER NOT NULL DEFAULT 0,
    parent_execution_id   TEXT    REFERENCES workflow_executions (id) ON DELETE SET NULL,
    blocked_on_child_id   TEXT,
    owner_id              TEXT,
    org_id                TEXT,
    data_region           TEXT,
    priority              INTEGER NOT NULL DEFAULT 5,
    idempotency_key       TEXT    UNIQUE,
    error_message         TEXT,
    version               INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    updated_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    completed_at          TEXT
);

CREATE UNIQUE INDEX IF NOT EXISTS ix_workflow_executions_seq ON workflow_executions (seq);
CREATE INDEX IF NOT EXISTS ix_workflow_executions_status_created ON workflow_executions (status, created_at);
CREATE INDEX IF NOT EXISTS ix_workflow_executions_type_created ON workflow_executions (workflow_type, created_at);
CREATE INDEX IF NOT EXISTS ix_workflow_executions_owner_created ON workflow_executions (owner_id, created_at);
CREATE INDEX IF NOT EXISTS ix_workflow_executions_parent ON workflow_executions (parent_execution_id);
CREATE INDEX IF NOT EXISTS ix_workflow_executions_created ON workflow_executions (created_at);

CREATE TABLE IF NOT EXISTS workflow_audit_log (
    id                    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    workflow_id           TEXT    NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    event_type            TEXT    NOT NULL,
    step_name             TEXT,
    old_status            TEXT,
    new_status            TEXT,
    event_data            TEXT,
    user_id               TEXT,
    worker_id             TEXT,
    execution_duration_ms REAL,
    timestamp             TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_workflow_audit_log_workflow ON workflow_audit_log (workflow_id, id);
CREATE INDEX IF NOT EXISTS ix_workflow_audit_log_event ON workflow_audit_log (event_type, timestamp);

CREATE TABLE IF NOT EXISTS workflow_execution_logs (
    id                    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    workflow_id           TEXT    NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_name             TEXT,
    log_level             TEXT    NOT NULL,
    message               TEXT    NOT NULL,
    metadata              TEXT,
    logged_at             TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_workflow_execution_logs_workflow ON workflow_execution_logs (workflow_id, id);

CREATE TABLE IF NOT EXISTS workflow_metrics (
    id                    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    workflow_id           TEXT    NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    workflow_type         TEXT,
    step_name             TEXT,
    metric_name           TEXT    NOT NULL,
    metric_value          REAL    NOT NULL,
    unit                  TEXT,
    tags                  TEXT,
    recorded_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_workflow_metrics_workflow ON workflow_metrics (workflow_id);
CREATE INDEX IF NOT EXISTS ix_workflow_metrics_type_name ON workflow_metrics (workflow_type, metric_name);

CREATE TABLE IF NOT EXISTS workflow_heartbeats (
    workflow_id           TEXT    NOT NULL PRIMARY KEY REFERENCES workflow_executions (id) ON DELETE CASCADE,
    worker_id             TEXT    NOT NULL,
    current_step          TEXT,
    last_heartbeat        TEXT    NOT NULL,
    metadata              TEXT
);

CREATE INDEX IF NOT EXISTS ix_workflow_heartbeats_last ON workflow_heartbeats (last_heartbeat);

-- Not used by the code yet: saga compensation records, the task queue and cron schedules.

CREATE TABLE IF NOT EXISTS compensation_log (
    log_id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    execution_id          TEXT    NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_name             TEXT    NOT NULL,
    step_index            INTEGER,
    action_type           TEXT    NOT NULL,
    action_result         TEXT,
    error_message         TEXT,
    executed_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    executed_by           TEXT,
    state_before          TEXT,
    state_after           TEXT
);

CREATE INDEX IF NOT EXISTS ix_compensation_log_execution ON compensation_log (execution_id, log_id);

CREATE TABLE IF NOT EXISTS tasks (
    task_id               TEXT    NOT NULL PRIMARY KEY,
    execution_id          TEXT    NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_name             TEXT    NOT NULL,
    step_index            INTEGER,
    status                TEXT    NOT NULL DEFAULT 'PENDING',
    worker_id             TEXT,
    claimed_at            TEXT,
    started_at            TEXT,
    completed_at          TEXT,
    retry_count           INTEGER NOT NULL DEFAULT 0,
    max_retries           INTEGER NOT NULL DEFAULT 3,
    last_error            TEXT,
    task_data             TEXT,
    result                TEXT,
    idempotency_key       TEXT    UNIQUE,
    created_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    updated_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_tasks_status_created ON tasks (status, created_at);
CREATE INDEX IF NOT EXISTS ix_tasks_execution ON tasks (execution_id);

CREATE TABLE IF NOT EXISTS scheduled_workflows (
    id                    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    schedule_name         TEXT    NOT NULL UNIQUE,
    workflow_type         TEXT    NOT NULL,
    cron_expression       TEXT    NOT NULL,
    initial_data          TEXT    NOT NULL DEFAULT '{}',
    enabled               INTEGER NOT NULL DEFAULT 1,
    last_run_at           TEXT,
    next_run_at           TEXT,
    run_count             INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    updated_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
);

CREATE INDEX IF NOT EXISTS ix_scheduled_workflows_due ON scheduled_workflows (enabled, next_run_at);
