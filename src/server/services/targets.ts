import { LenixError } from '../../core/errors.js';
import type { ExternalRepo, TargetRecord } from '../../store/records.js';
import type { TargetFields } from '../../store/store.js';
import type { DepsOf } from '../context.js';
import type { ReleaseService } from './releases.js';
import { platformOf } from '../../rpm/platforms.js';

const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** rpm macro names a target may set (`%dist`, `%rhel`, `%vendor`, `%_vendor` ...). */
const MACRO_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Macro values: one line of printable text, without a macro expansion (`%`) of their own. */
const MACRO_VALUE = /^[^\p{Cc}%]{0,256}$/u;

/** What a target is made of: the same fields the store keeps, checked here first. */
export type TargetInput = TargetFields;

/**
 * Build targets (like Koji targets, ALBS platforms): what builds of a target are built against — its build
 * repository, which Lenix keeps current by itself, and further repositories — and with which rpm macros
 * and arches. Creating a target creates its build repository when it does not exist yet.
 */
export class TargetService {
  constructor(
    private readonly deps: DepsOf<'clock' | 'releases', 'targets'>,
    private readonly releases: Pick<ReleaseService, 'createRepo' | 'requireRepo' | 'requireKey'>,
  ) {}

  async create(name: string, input: TargetInput): Promise<TargetRecord> {
    if (!TARGET_NAME.test(name))
      throw new LenixError('INVALID_NAME', 'target name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
    if (await this.deps.store.targets.getByName(name))
      throw new LenixError('TARGET_EXISTS', `a target ${name} exists already`);
    const fields = await this.check(input);
    if (!(await this.deps.releases.getRepoByName(fields.buildRepo)))
      await this.releases.createRepo({
        name: fields.buildRepo,
        arches: [...fields.arches],
        keys: [],
        keepDays: 14,
        keepVersions: 1,
      });
    return this.deps.store.targets.create(name, fields, this.deps.clock.now());
  }

  /** Change a target; builds already made keep what they were built with (their tasks' records say it). */
  async edit(name: string, change: Partial<TargetInput>): Promise<TargetRecord> {
    const t = await this.require(name);
    const fields = await this.check({ ...t, ...change });
    if (!(await this.deps.releases.getRepoByName(fields.buildRepo)))
      throw new LenixError('TARGET_INVALID', `the build repository ${fields.buildRepo} does not exist`);
    return this.deps.store.targets.update(t.id, fields, this.deps.clock.now());
  }

  async require(name: string): Promise<TargetRecord> {
    const t = await this.deps.store.targets.getByName(name);
    if (!t) throw new LenixError('TARGET_NOT_FOUND', `no target ${name.slice(0, 64)}`);
    return t;
  }

  list(): Promise<TargetRecord[]> {
    return this.deps.store.targets.list();
  }

  private async check(input: TargetInput): Promise<TargetFields> {
    if (input.arches.length === 0) throw new LenixError('TARGET_INVALID', 'a target needs at least one arch');
    for (const [k, v] of Object.entries(input.macros)) {
      if (!MACRO_NAME.test(k))
        throw new LenixError('TARGET_INVALID', `macro name ${k.slice(0, 64)} is not a plain name`);
      if (!MACRO_VALUE.test(v))
        throw new LenixError('TARGET_INVALID', `macro ${k}: a value is one line without % (at most 256 characters)`);
    }
    const from = [...input.fromRepos];
    if (new Set([input.buildRepo, ...from]).size !== from.length + 1)
      throw new LenixError('TARGET_INVALID', 'a repository is named twice among the build and --from repositories');
    for (const r of from) await this.releases.requireRepo(r);
    if (input.releaseTo !== null) {
      await this.releases.requireRepo(input.releaseTo);
      if (input.releaseTo === input.buildRepo)
        throw new LenixError('TARGET_INVALID', 'the build repository is not a release repository: name another');
    }
    const external: ExternalRepo[] = [];
    for (const e of input.externalRepos) {
      if (!/^https?:\/\/[^\s]+$/.test(e.url))
        throw new LenixError('TARGET_INVALID', `external repository ${e.url.slice(0, 100)} is not an http(s) URL`);
      const key = await this.releases.requireKey(e.key);
      external.push({ url: e.url.endsWith('/') ? e.url : `${e.url}/`, key: key.fingerprint });
    }
    return {
      buildRepo: input.buildRepo,
      fromRepos: from,
      externalRepos: external,
      arches: [...new Set(input.arches)],
      macros: { ...input.macros },
      releaseTo: input.releaseTo,
      platform: input.platform === null ? null : platformOf(input.platform).name,
    };
  }
}
