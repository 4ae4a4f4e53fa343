import type { Kysely, Selectable } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { ExternalRepo, TargetRecord } from './records.js';
import type { Database } from './schema.js';
import { isUniqueViolation, json, parseJson } from './rows.js';

export interface TargetFields {
  readonly buildRepo: string;
  readonly fromRepos: readonly string[];
  readonly externalRepos: readonly ExternalRepo[];
  readonly arches: readonly string[];
  readonly macros: Readonly<Record<string, string>>;
  readonly releaseTo: string | null;
  /** The platform its buildroots get (el9), or null: the build host's own rpm macros. */
  readonly platform: string | null;
}

function toTarget(r: Selectable<Database['targets']>): TargetRecord {
  return {
    id: r.id,
    name: r.name,
    buildRepo: r.build_repo,
    fromRepos: parseJson<string[]>(r.from_repos, []),
    externalRepos: parseJson<ExternalRepo[]>(r.external_repos, []),
    arches: parseJson<string[]>(r.arches, []),
    macros: parseJson<Record<string, string>>(r.macros, {}),
    releaseTo: r.release_to,
    platform: r.platform ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** Build targets: created, listed, edited (a build keeps the id of the target it named). */
export class TargetStore {
  constructor(readonly db: Kysely<Database>) {}

  async create(name: string, f: TargetFields, now: number): Promise<TargetRecord> {
    try {
      const row = await this.db
        .insertInto('targets')
        .values({ name, ...columns(f), created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toTarget(row);
    } catch (e) {
      if (isUniqueViolation(e)) throw new LenixError('TARGET_EXISTS', `a target ${name} exists already`);
      throw e;
    }
  }

  async update(id: number, f: TargetFields, now: number): Promise<TargetRecord> {
    const row = await this.db
      .updateTable('targets')
      .set({ ...columns(f), updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return toTarget(row);
  }

  async get(id: number): Promise<TargetRecord | null> {
    const row = await this.db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTarget(row) : null;
  }

  async getByName(name: string): Promise<TargetRecord | null> {
    const row = await this.db.selectFrom('targets').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toTarget(row) : null;
  }

  async list(): Promise<TargetRecord[]> {
    return (await this.db.selectFrom('targets').selectAll().orderBy('name').execute()).map(toTarget);
  }

  /** The targets whose build repository this is (a repository may serve several). */
  async withBuildRepo(repo: string): Promise<TargetRecord[]> {
    return (await this.db.selectFrom('targets').selectAll().where('build_repo', '=', repo).execute()).map(toTarget);
  }
}

function columns(f: TargetFields) {
  return {
    build_repo: f.buildRepo,
    from_repos: json(f.fromRepos),
    external_repos: json(f.externalRepos),
    arches: json(f.arches),
    macros: json(f.macros),
    release_to: f.releaseTo,
    platform: f.platform,
  };
}
