import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0015: the mirror checker and retention. `mirror_checks` holds each mirror's last check per repository
 * arch (current, behind by N snapshots, bad: a repomd.xml no snapshot had, unreachable); `repos.keep_versions` is
 * how many versions of each package a repository keeps (0: all); `artifacts.pruned_at` marks an artifact whose
 * bytes were pruned by policy (its record and ledger statements stay); an index counts the queue per arch.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('mirror_checks')
    .addColumn('mirror_url', 'text', (c) => c.notNull())
    .addColumn('repo_id', 'integer', (c) => c.notNull())
    .addColumn('arch', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('snapshot_id', 'integer')
    .addColumn('behind', 'integer')
    .addColumn('sha256', 'text')
    .addColumn('detail', 'text')
    .addColumn('checked_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('mirror_checks_pk', ['mirror_url', 'repo_id', 'arch'])
    .execute();
  await db.schema
    .alterTable('repos')
    .addColumn('keep_versions', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // Build repositories (targets' buildroots) keep one version each, as before.
  await (db as Kysely<{ repos: { name: string; keep_versions: number }; targets: { build_repo: string } }>)
    .updateTable('repos')
    .set({ keep_versions: 1 })
    .where('name', 'in', (q) => q.selectFrom('targets').select('build_repo'))
    .execute();
  await db.schema.alterTable('artifacts').addColumn('pruned_at', 'bigint').execute();
  // The queue per arch (the dashboard, /api/v1/queue) counted from the index alone.
  await db.schema.createIndex('tasks_queue_arch').on('tasks').columns(['role', 'state', 'arch']).execute();
}
