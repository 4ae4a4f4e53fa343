import { sql, type Kysely, type Selectable } from 'kysely';
import { LenixError } from '../core/errors.js';
import {
  advisoryId,
  type Advisory,
  type AdvisoryPackage,
  type AdvisoryReference,
  type AdvisoryStatus,
  type AdvisoryType,
  type Severity,
} from '../errata/advisory.js';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';

export interface StoredAdvisory extends Advisory {
  readonly repoId: number;
  readonly releaseId: number | null;
  readonly createdBy: string;
  readonly approvedBy: string | null;
  readonly createdAt: number;
}

export interface NewAdvisory {
  readonly prefix: string;
  readonly year: number;
  /** An explicit id (import of an existing one); otherwise the next number for prefix and year. */
  readonly id?: string;
  readonly repoId: number;
  readonly type: AdvisoryType;
  readonly severity: Severity | null;
  readonly title: string;
  readonly synopsis: string;
  readonly description: string;
  readonly rebootSuggested: boolean;
  readonly references: readonly AdvisoryReference[];
  readonly packages: readonly AdvisoryPackage[];
  readonly upstreamId: string | null;
  readonly createdBy: string;
}

const json = (v: unknown) => JSON.stringify(v);

/** Advisories: ids allocated once (a counter per prefix and year, in the same transaction as the insert). */
export class ErrataStore {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {}

  async create(a: NewAdvisory, now: number): Promise<StoredAdvisory> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        let id = a.id;
        if (!id) {
          const scope = `${a.prefix}-${a.year}`;
          const row = await trx
            .insertInto('advisory_counters')
            .values({ scope, last_number: 1 })
            .onConflict((oc) => oc.column('scope').doUpdateSet({ last_number: sql`advisory_counters.last_number + 1` }))
            .returning('last_number')
            .executeTakeFirstOrThrow();
          id = advisoryId(a.prefix, a.type, a.year, row.last_number);
        }
        const row = await trx
          .insertInto('advisories')
          .values({
            advisory_id: id,
            repo_id: a.repoId,
            type: a.type,
            severity: a.severity,
            title: a.title,
            synopsis: a.synopsis,
            description: a.description,
            issued_at: now,
            updated_at: now,
            version: 1,
            status: 'draft',
            reboot_suggested: a.rebootSuggested ? 1 : 0,
            refs: json(a.references),
            packages: json(a.packages),
            upstream_id: a.upstreamId,
            release_id: null,
            created_by: a.createdBy,
            approved_by: null,
            created_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toAdvisory(row, '');
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new LenixError('ERRATA_EXISTS', `advisory ${a.id ?? ''} already exists`);
      throw err;
    }
  }

  async get(id: string): Promise<StoredAdvisory | null> {
    const r = await this.query().where('advisories.advisory_id', '=', id).executeTakeFirst();
    return r ? toAdvisory(r, r.repo_name) : null;
  }

  async list(
    f: { repoId?: number; status?: AdvisoryStatus; type?: AdvisoryType; severity?: Severity; limit?: number } = {},
  ): Promise<StoredAdvisory[]> {
    let q = this.query();
    if (f.repoId !== undefined) q = q.where('advisories.repo_id', '=', f.repoId);
    if (f.status) q = q.where('advisories.status', '=', f.status);
    if (f.type) q = q.where('advisories.type', '=', f.type);
    if (f.severity) q = q.where('advisories.severity', '=', f.severity);
    const rows = await q
      .orderBy('advisories.id', 'desc')
      .limit(f.limit ?? 1000)
      .execute();
    return rows.map((r) => toAdvisory(r, r.repo_name));
  }

  /** Change texts or packages; `expect` guards against a concurrent status change. */
  async update(
    id: string,
    expect: AdvisoryStatus,
    set: Partial<
      Pick<Advisory, 'severity' | 'title' | 'synopsis' | 'description' | 'rebootSuggested' | 'references' | 'packages'>
    >,
    now: number,
    bumpVersion: boolean,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('advisories')
      .set({
        ...(set.severity !== undefined ? { severity: set.severity } : {}),
        ...(set.title !== undefined ? { title: set.title } : {}),
        ...(set.synopsis !== undefined ? { synopsis: set.synopsis } : {}),
        ...(set.description !== undefined ? { description: set.description } : {}),
        ...(set.rebootSuggested !== undefined ? { reboot_suggested: set.rebootSuggested ? 1 : 0 } : {}),
        ...(set.references !== undefined ? { refs: json(set.references) } : {}),
        ...(set.packages !== undefined ? { packages: json(set.packages) } : {}),
        updated_at: now,
        ...(bumpVersion ? { version: sql<number>`version + 1` } : {}),
      })
      .where('advisory_id', '=', id)
      .where('status', '=', expect)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async setStatus(
    id: string,
    from: AdvisoryStatus,
    to: AdvisoryStatus,
    set: { approvedBy?: string | null; releaseId?: number },
    now: number,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('advisories')
      .set({
        status: to,
        ...(set.approvedBy !== undefined ? { approved_by: set.approvedBy } : {}),
        ...(set.releaseId !== undefined ? { release_id: set.releaseId, updated_at: now } : {}),
      })
      .where('advisory_id', '=', id)
      .where('status', '=', from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  private query() {
    return this.db
      .selectFrom('advisories')
      .innerJoin('repos', 'repos.id', 'advisories.repo_id')
      .selectAll('advisories')
      .select('repos.name as repo_name');
  }
}

function toAdvisory(r: Selectable<Database['advisories']>, repo: string): StoredAdvisory {
  return {
    id: r.advisory_id,
    repo,
    repoId: r.repo_id,
    type: r.type as AdvisoryType,
    severity: r.severity as Severity | null,
    title: r.title,
    synopsis: r.synopsis,
    description: r.description,
    issued: Number(r.issued_at),
    updated: Number(r.updated_at),
    version: r.version,
    status: r.status as AdvisoryStatus,
    rebootSuggested: r.reboot_suggested === 1,
    references: JSON.parse(r.refs) as AdvisoryReference[],
    packages: JSON.parse(r.packages) as AdvisoryPackage[],
    upstreamId: r.upstream_id,
    releaseId: r.release_id,
    createdBy: r.created_by,
    approvedBy: r.approved_by,
    createdAt: Number(r.created_at),
  };
}
