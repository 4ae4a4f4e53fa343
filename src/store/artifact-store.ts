import type { Kysely } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { ArtifactKind, ArtifactRecord } from './records.js';
import type { Database } from './schema.js';
import { parseJson, toArtifact } from './rows.js';

export interface NewArtifact {
  readonly buildId: number;
  readonly taskId: number;
  readonly leaseId: number;
  readonly sha256: string;
  readonly size: number;
  readonly name: string;
  readonly kind: ArtifactKind;
  readonly arch: string | null;
  readonly nevra: string | null;
  readonly parentId: number | null;
  readonly signedBy?: string | null;
}

/** Artifact records (the bytes live in the blob store, by digest) and lookaside files. */
export class ArtifactStore {
  constructor(readonly db: Kysely<Database>) {}

  async add(a: NewArtifact, fencingToken: number, now: number): Promise<ArtifactRecord> {
    return this.db.transaction().execute(async (trx) => {
      // Re-check the fence inside the transaction that writes: a stale agent's upload records nothing.
      const task = await trx
        .selectFrom('tasks')
        .select(['state', 'fencing_token', 'lease_id'])
        .where('id', '=', a.taskId)
        .executeTakeFirstOrThrow();
      if (task.state !== 'leased' || Number(task.fencing_token) !== fencingToken || task.lease_id !== a.leaseId) {
        throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands during the upload');
      }
      // A retried upload of the same file in the same lease replaces nothing and returns the first record.
      const same = await trx
        .selectFrom('artifacts')
        .selectAll()
        .where('lease_id', '=', a.leaseId)
        .where('name', '=', a.name)
        .executeTakeFirst();
      if (same && same.sha256 === a.sha256) return toArtifact(same);
      if (same) await trx.deleteFrom('artifacts').where('id', '=', same.id).execute();
      const row = await trx
        .insertInto('artifacts')
        .values({
          build_id: a.buildId,
          task_id: a.taskId,
          lease_id: a.leaseId,
          sha256: a.sha256,
          size: a.size,
          name: a.name,
          kind: a.kind,
          arch: a.arch,
          nevra: a.nevra,
          parent_id: a.parentId,
          created_at: now,
          signed_by: a.signedBy ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toArtifact(row);
    });
  }

  /** Artifacts of a build as the build's record shows them: from each task's final (current) lease only. */
  async listOfBuild(buildId: number): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .innerJoin('tasks', 'tasks.id', 'artifacts.task_id')
      .selectAll('artifacts')
      .where('artifacts.build_id', '=', buildId)
      .whereRef('artifacts.lease_id', '=', 'tasks.lease_id')
      .orderBy('artifacts.id')
      .execute();
    return rows.map(toArtifact);
  }

  /** Artifacts of a kind with this NEVRA (`name-[e:]v-r.arch`), oldest first. */
  async findByNevra(nevra: string, kind: ArtifactKind): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('nevra', '=', nevra)
      .where('kind', '=', kind)
      .orderBy('id')
      .execute();
    return rows.map(toArtifact);
  }

  /** Signed packages named `name` (any version and arch). */
  async findSignedByName(name: string): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('kind', '=', 'signed-rpm')
      .where('nevra', 'like', `${name.replace(/[%_\\]/g, '_')}-%`)
      .orderBy('id')
      .execute();
    return rows
      .map(toArtifact)
      .filter(
        (a) => a.nevra !== null && a.nevra.slice(0, a.nevra.lastIndexOf('-', a.nevra.lastIndexOf('-') - 1)) === name,
      );
  }

  async findBySha(sha256: string): Promise<ArtifactRecord | null> {
    const row = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('sha256', '=', sha256)
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row ? toArtifact(row) : null;
  }

  async listOfLease(leaseId: number): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('lease_id', '=', leaseId)
      .orderBy('id')
      .execute();
    return rows.map(toArtifact);
  }

  async addLookaside(sha256: string, name: string, size: number, now: number): Promise<void> {
    const existing = await this.db
      .selectFrom('lookaside')
      .select('sha256')
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    if (existing) return;
    await this.db.insertInto('lookaside').values({ sha256, name, size, uploaded_at: now }).execute();
  }

  async hasLookaside(sha256: string): Promise<boolean> {
    return (
      (await this.db.selectFrom('lookaside').select('sha256').where('sha256', '=', sha256).executeTakeFirst()) !==
      undefined
    );
  }

  /**
   * Artifacts whose bytes a prune may remove: of builds that finished before `before`, except the newest
   * `keepBuilds` builds of each source and builds with a task still queued or leased; packages, sources and logs
   * (the buildroot records stay), not pruned yet.
   */
  async pruneCandidates(before: number, keepBuilds: number): Promise<ArtifactRecord[]> {
    const builds = await this.db
      .selectFrom('builds')
      .select(['id', 'source_id', 'finished_at'])
      .where('finished_at', 'is not', null)
      .orderBy('id', 'desc')
      .execute();
    // A build's own tasks end before its sign and test tasks: a build with any task still queued or leased keeps
    // its files (the signer and the tester read them).
    const busy = new Set(
      (
        await this.db
          .selectFrom('tasks')
          .select('build_id')
          .where('state', 'in', ['queued', 'leased'])
          .distinct()
          .execute()
      ).map((r) => r.build_id),
    );
    const kept = new Map<number, number>();
    const old: number[] = [];
    for (const b of builds) {
      if (busy.has(b.id)) continue;
      const n = (kept.get(b.source_id) ?? 0) + 1;
      kept.set(b.source_id, n);
      if (n > keepBuilds && Number(b.finished_at) < before) old.push(b.id);
    }
    const out: ArtifactRecord[] = [];
    for (let i = 0; i < old.length; i += 500) {
      const rows = await this.db
        .selectFrom('artifacts')
        .selectAll()
        .where('build_id', 'in', old.slice(i, i + 500))
        .where('kind', 'in', ['srpm', 'rpm', 'signed-srpm', 'signed-rpm', 'log'])
        .where('pruned_at', 'is', null)
        .orderBy('id')
        .execute();
      out.push(...rows.map(toArtifact));
    }
    return out;
  }

  async markPruned(ids: readonly number[], now: number): Promise<void> {
    for (let i = 0; i < ids.length; i += 500)
      await this.db
        .updateTable('artifacts')
        .set({ pruned_at: now })
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
  }

  /** Digests whose bytes something still needs (artifacts not pruned, lookaside, imports, shared metadata). */
  async referencedBlobs(): Promise<Set<string>> {
    const a = await this.db
      .selectFrom('artifacts')
      .select('sha256')
      .where('pruned_at', 'is', null)
      .distinct()
      .execute();
    const l = await this.db.selectFrom('lookaside').select('sha256').execute();
    const i = await this.db.selectFrom('imports').select('sha256').distinct().execute();
    // Metadata files of snapshots kept in a shared blob store (pruned snapshots are marked failed).
    const shared = await this.db
      .selectFrom('snapshots')
      .select('files')
      .where('files', 'is not', null)
      .where('state', '!=', 'failed')
      .execute();
    const files = shared.flatMap((r) => Object.values(parseJson<Record<string, string>>(r.files, {})));
    return new Set([...[...a, ...l, ...i].map((r) => r.sha256), ...files]);
  }
}
