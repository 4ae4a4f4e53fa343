import { sql, type Kysely, type ColumnDefinitionBuilder } from 'kysely';
import type { Dialect } from '../dialect.js';

/** Migration 0001: the build spine. Append-only: later changes go into new numbered files. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'postgres' ? 'serial' : 'integer';
  const time = 'bigint'; // INTEGER affinity in SQLite, int8 in PostgreSQL
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  const pk = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());

  await db.schema
    .createTable('sources')
    .addColumn('id', id, pk)
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('branch', 'text', (c) => c.notNull())
    .addColumn('watch', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('last_fetched_at', time)
    .addColumn('last_seen_commit', 'text')
    .execute();

  await db.schema
    .createTable('commits')
    .addColumn('id', id, pk)
    .addColumn('source_id', 'integer', (c) => c.notNull().references('sources.id'))
    .addColumn('sha', 'text', (c) => c.notNull())
    .addColumn('tree', 'text', (c) => c.notNull())
    .addColumn('committed_at', time, (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('recorded_at', time, (c) => c.notNull())
    .addUniqueConstraint('commits_source_sha', ['source_id', 'sha'])
    .execute();

  await db.schema
    .createTable('builds')
    .addColumn('id', id, pk)
    .addColumn('source_id', 'integer', (c) => c.notNull().references('sources.id'))
    .addColumn('commit_id', 'integer', (c) => c.notNull().references('commits.id'))
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('arches', 'text', (c) => c.notNull())
    .addColumn('spec_path', 'text', (c) => c.notNull())
    .addColumn('package_name', 'text', (c) => c.notNull())
    .addColumn('package_evr', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('started_at', time)
    .addColumn('finished_at', time)
    .addColumn('reason_code', 'text')
    .addColumn('reason', 'text')
    .execute();
  await db.schema.createIndex('builds_source').on('builds').columns(['source_id', 'id']).execute();
  await db.schema.createIndex('builds_state').on('builds').columns(['state', 'id']).execute();

  await db.schema
    .createTable('tasks')
    .addColumn('id', id, pk)
    .addColumn('build_id', 'integer', (c) => c.notNull().references('builds.id'))
    .addColumn('source_id', 'integer', (c) => c.notNull().references('sources.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('arch', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('vstart', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('fencing_token', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_id', 'integer')
    .addColumn('agent_id', 'integer')
    .addColumn('lease_expires_at', time)
    .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('started_at', time)
    .addColumn('finished_at', time)
    .addColumn('reason_code', 'text')
    .addColumn('reason', 'text')
    .addColumn('result', 'text')
    .addColumn('log_size', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  // The lease order (priority first, then fair-share virtual start) is served from this one index.
  await sql`create index tasks_queue on tasks (state, role, priority desc, vstart, id)`.execute(db);
  await db.schema.createIndex('tasks_vclock').on('tasks').columns(['role', 'state', 'vstart']).execute();
  await db.schema.createIndex('tasks_source_vclock').on('tasks').columns(['source_id', 'role', 'vstart']).execute();
  await db.schema.createIndex('tasks_expiry').on('tasks').columns(['state', 'lease_expires_at']).execute();
  await db.schema.createIndex('tasks_build').on('tasks').columns(['build_id', 'id']).execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', id, pk)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('revoked_at', time)
    .execute();

  await db.schema
    .createTable('agents')
    .addColumn('id', id, pk)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('arches', 'text', (c) => c.notNull())
    .addColumn('capabilities', 'text', (c) => c.notNull())
    .addColumn('token_id', 'integer', (c) => c.notNull().references('tokens.id'))
    .addColumn('registered_at', time, (c) => c.notNull())
    .addColumn('last_seen_at', time, (c) => c.notNull())
    .addUniqueConstraint('agents_name_role', ['name', 'role'])
    .execute();

  await db.schema
    .createTable('leases')
    .addColumn('id', id, pk)
    .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id'))
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('fencing_token', 'bigint', (c) => c.notNull())
    .addColumn('acquired_at', time, (c) => c.notNull())
    .addColumn('expires_at', time, (c) => c.notNull())
    .addColumn('ended_at', time)
    .addColumn('outcome', 'text')
    .execute();
  await db.schema.createIndex('leases_task').on('leases').columns(['task_id']).execute();

  await db.schema
    .createTable('artifacts')
    .addColumn('id', id, pk)
    .addColumn('build_id', 'integer', (c) => c.notNull().references('builds.id'))
    .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id'))
    .addColumn('lease_id', 'integer', (c) => c.notNull().references('leases.id'))
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('arch', 'text')
    .addColumn('nevra', 'text')
    .addColumn('parent_id', 'integer', (c) => c.references('artifacts.id'))
    .addColumn('created_at', time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('artifacts_sha').on('artifacts').columns(['sha256']).execute();
  await db.schema.createIndex('artifacts_task').on('artifacts').columns(['task_id']).execute();
  await db.schema.createIndex('artifacts_build').on('artifacts').columns(['build_id']).execute();

  await db.schema
    .createTable('log_chunks')
    .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id'))
    .addColumn('start_offset', 'bigint', (c) => c.notNull())
    .addColumn('end_offset', 'bigint', (c) => c.notNull())
    .addColumn('data', bytes, (c) => c.notNull())
    .addPrimaryKeyConstraint('log_chunks_pk', ['task_id', 'start_offset'])
    .execute();
  await db.schema.createIndex('log_chunks_end').on('log_chunks').columns(['task_id', 'end_offset']).execute();

  await db.schema
    .createTable('events')
    .addColumn('id', id, pk)
    .addColumn('at', time, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('build_id', 'integer')
    .addColumn('task_id', 'integer')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_build').on('events').columns(['build_id', 'id']).execute();

  await db.schema
    .createTable('lookaside')
    .addColumn('sha256', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('uploaded_at', time, (c) => c.notNull())
    .execute();
}
