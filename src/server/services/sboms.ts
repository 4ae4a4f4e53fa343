import { createHash } from 'node:crypto';
import { renderSbom } from '../../attest/sbom-render.js';
import {
  SBOM_MEDIA_TYPES,
  type BuildrootItem,
  type SbomFormat,
  type SbomInput,
  type SbomPackage,
  type SbomStep,
} from '../../attest/sbom.js';
import { sbomStatement } from '../../attest/statements.js';
import { LenixError } from '../../core/errors.js';
import { byCodeUnits, parseSha256 } from '../../core/ids.js';
import { LENIX_VERSION } from '../../core/version.js';
import { TAG, num, packageInfo, readRpmStreamHeader, str, strings, type RpmHeader } from '../../rpm/header.js';
import type { ArtifactRecord, BuildRecord, RepoRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { LedgerService } from './ledger.js';
import { publicSourceUrl } from '../../core/source-url.js';
import { buildrootOf } from '../../core/protocol.js';
import { parseNevra } from '../../core/nevra.js';

const RPM_KINDS = new Set(['srpm', 'rpm', 'signed-srpm', 'signed-rpm']);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

interface BuildFacts {
  readonly build: BuildRecord;
  readonly gitUrl: string;
  readonly sourceEntries: readonly number[];
  readonly tasks: readonly TaskRecord[];
  readonly agentNames: ReadonlyMap<number, string>;
}

export interface ServedSbom {
  readonly body: string;
  readonly mediaType: string;
  readonly sha256: string;
  /** The ledger entry that records this document's digest. */
  readonly entry: number;
}

/**
 * SBOMs for a package, a build or a repository snapshot (attest/sbom.ts renders them). Everything comes from
 * records that do not change once written (artifacts, headers, buildroots, ledger entries), so one input gives
 * one document; each distinct document served is recorded in the ledger (a `sbom` statement keyed by its
 * sha256), so `lenix verify --sbom FILE` can check a copy someone was handed.
 */
export class SbomService {
  private readonly headers = new Map<string, RpmHeader>();

  constructor(
    private readonly deps: DepsOf<
      'blobs' | 'config' | 'releases',
      'agents' | 'artifacts' | 'builds' | 'imports' | 'sources' | 'tasks'
    >,
    private readonly ledger: LedgerService,
  ) {}

  async forBuild(id: number, format: SbomFormat): Promise<ServedSbom> {
    const build = await this.deps.store.builds.get(id);
    if (!build) throw new LenixError('BUILD_NOT_FOUND', `no build ${id}`);
    const artifacts = await this.deps.store.artifacts.listOfBuild(build.id);
    // The files as served: the signed package where there is one, else the one built.
    const built = artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
    const chosen = built.map((a) => artifacts.find((s) => s.parentId === a.id && s.kind.startsWith('signed-')) ?? a);
    const repo = build.targetRepo ? await this.deps.releases.getRepoByName(build.targetRepo) : null;
    const facts = await this.buildFacts(build);
    const packages = await Promise.all(chosen.map((a) => this.pkg(a, facts, artifacts)));
    const { buildroot, steps } = this.pipeline(facts, artifacts, packages);
    return this.serve(
      {
        kind: 'build',
        identity: `build:${build.id}`,
        title: build.packageName,
        version: build.packageEvr,
        timestamp: iso(build.finishedAt ?? build.startedAt ?? build.createdAt)!,
        ...this.identity(repo),
        toolVersion: LENIX_VERSION,
        packages,
        buildroot,
        steps,
      },
      format,
    );
  }

  async forArtifact(sha256: string, format: SbomFormat): Promise<ServedSbom> {
    const a = await this.deps.store.artifacts.findBySha(parseSha256(sha256));
    if (!a) throw new LenixError('ARTIFACT_NOT_FOUND', `no artifact ${sha256}`);
    if (!RPM_KINDS.has(a.kind))
      throw new LenixError('NOT_AN_RPM', `artifact ${sha256} is a ${a.kind}, not an RPM package`);
    const build = (await this.deps.store.builds.get(a.buildId))!;
    const artifacts = await this.deps.store.artifacts.listOfBuild(build.id);
    const repo = build.targetRepo ? await this.deps.releases.getRepoByName(build.targetRepo) : null;
    const facts = await this.buildFacts(build);
    const p = await this.pkg(a, facts, artifacts);
    const { buildroot, steps } = this.pipeline(facts, artifacts, [p]);
    return this.serve(
      {
        kind: 'package',
        identity: `sha256:${a.sha256}`,
        title: p.name,
        version: `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`,
        timestamp: p.buildTime ?? iso(build.createdAt)!,
        ...this.identity(repo),
        toolVersion: LENIX_VERSION,
        packages: [p],
        buildroot,
        steps,
      },
      format,
    );
  }

  /** `snapshot` is a snapshot id, or null for the repository's current one. */
  async forSnapshot(repoName: string, snapshot: number | null, format: SbomFormat): Promise<ServedSbom> {
    const repo = await this.deps.releases.getRepoByName(repoName);
    if (!repo) throw new LenixError('REPO_NOT_FOUND', `no repository ${repoName.slice(0, 64)}`);
    const id = snapshot ?? repo.currentSnapshotId;
    const snap = id === null ? null : await this.deps.releases.getSnapshot(id);
    if (!snap || snap.repoId !== repo.id)
      throw new LenixError('SNAPSHOT_NOT_FOUND', `repository ${repo.name} has no snapshot ${id ?? '(none published)'}`);
    if (snap.state !== 'ready')
      throw new LenixError('SNAPSHOT_NOT_FOUND', `snapshot ${snap.id} of ${repo.name} is ${snap.state}, not published`);
    const builds = new Map<number, { facts: BuildFacts; artifacts: ArtifactRecord[] }>();
    const packages: SbomPackage[] = [];
    for (const sp of [...snap.packages].sort((a, b) => byCodeUnits(a.sha256, b.sha256))) {
      if (sp.importId !== undefined) {
        packages.push(await this.importedPkg(sp.importId));
        continue;
      }
      if (!builds.has(sp.buildId)) {
        const build = (await this.deps.store.builds.get(sp.buildId))!;
        builds.set(sp.buildId, {
          facts: await this.buildFacts(build),
          artifacts: await this.deps.store.artifacts.listOfBuild(sp.buildId),
        });
      }
      const b = builds.get(sp.buildId)!;
      const a = b.artifacts.find((x) => x.sha256 === sp.sha256);
      if (!a)
        throw new LenixError(
          'INTERNAL',
          `snapshot ${snap.id} names ${sp.sha256}, which build ${sp.buildId} does not have`,
        );
      packages.push(await this.pkg(a, b.facts, b.artifacts));
    }
    // The formulation of each build is in the build's own SBOM; a snapshot lists what it serves.
    return this.serve(
      {
        kind: 'snapshot',
        identity: `snapshot:${repo.name}:${snap.id}`,
        title: `${repo.name} snapshot ${snap.id}`,
        version: String(snap.id),
        timestamp: iso(snap.publishedAt ?? snap.createdAt)!,
        ...this.identity(repo),
        toolVersion: LENIX_VERSION,
        packages,
        buildroot: [],
        steps: [],
      },
      format,
    );
  }

  private identity(repo: RepoRecord | null): Pick<SbomInput, 'supplier' | 'vendor' | 'distro'> {
    const c = this.deps.config;
    return { supplier: c.sbomSupplier, vendor: repo?.vendor ?? c.sbomVendor, distro: repo?.distro ?? c.sbomDistro };
  }

  private async header(sha256: string): Promise<RpmHeader> {
    const hit = this.headers.get(sha256);
    if (hit) return hit;
    const { stream } = await this.deps.blobs.open(parseSha256(sha256)).catch(async (err: unknown) => {
      // Retention pruned the bytes: say so (the ledger still proves the package; its SBOM needs its header).
      const a = await this.deps.store.artifacts.findBySha(sha256);
      if (a?.prunedAt)
        throw new LenixError(
          'ARTIFACT_PRUNED',
          `${a.name} was pruned by the retention policy: no SBOM can be made from it (lenix verify ${sha256} proves it)`,
        );
      throw err;
    });
    const h = await readRpmStreamHeader(stream);
    if (this.headers.size > 2000) this.headers.delete(this.headers.keys().next().value!);
    this.headers.set(sha256, h);
    return h;
  }

  /** What every package of one build shares, read once per build: source URL, its source statements, its nodes. */
  private async buildFacts(build: BuildRecord): Promise<BuildFacts> {
    const [source, stages, tasks, agents] = await Promise.all([
      this.deps.store.sources.get(build.sourceId),
      this.ledger.store.lookupStages(`build:${build.id}`),
      this.deps.store.tasks.listOfBuild(build.id),
      this.deps.store.agents.list(),
    ]);
    return {
      build,
      gitUrl: source ? publicSourceUrl(source.name, source.url) : build.sourceName,
      sourceEntries: stages.filter((e) => e.kind === 'source').map((e) => e.index),
      tasks,
      agentNames: new Map(agents.map((a) => [a.id, a.name])),
    };
  }

  private async pkg(a: ArtifactRecord, facts: BuildFacts, artifacts: readonly ArtifactRecord[]): Promise<SbomPackage> {
    const { build } = facts;
    const unsigned = a.parentId === null ? a : (artifacts.find((x) => x.id === a.parentId) ?? a);
    const entries = new Set<number>(facts.sourceEntries);
    for (const d of new Set([a.sha256, unsigned.sha256]))
      for (const e of await this.ledger.store.lookupStages(`sha256:${d}`)) if (e.kind !== 'sbom') entries.add(e.index);
    return {
      ...headerFacts(await this.header(a.sha256)),
      fileName: a.name,
      sha256: a.sha256,
      size: a.size,
      signingKey: a.signedBy,
      buildId: build.id,
      buildNode: facts.agentNames.get(facts.tasks.find((t) => t.id === unsigned.taskId)?.agentId ?? -1) ?? null,
      gitUrl: facts.gitUrl,
      commit: build.commit.sha,
      ledgerEntries: [...entries].sort((x, y) => x - y),
    };
  }

  /** An imported package: its header's facts, its import record and the ledger entries naming it. */
  private async importedPkg(importId: number): Promise<SbomPackage> {
    const i = await this.deps.store.imports.get(importId);
    if (!i) throw new LenixError('INTERNAL', `a snapshot names import ${importId}, which does not exist`);
    const entries = (await this.ledger.store.lookupStages(`sha256:${i.sha256}`)).map((e) => e.index);
    return {
      ...headerFacts(await this.header(i.sha256)),
      fileName: i.name,
      sha256: i.sha256,
      size: i.size,
      signingKey: i.keyFingerprint,
      buildId: 0,
      buildNode: null,
      gitUrl: '',
      commit: '',
      ledgerEntries: [...new Set(entries)].sort((x, y) => x - y),
      imported: { importId: i.id, key: i.keyFingerprint, by: i.importedBy },
    };
  }

  /** The build's buildroot (from its build tasks' records) and its pipeline as steps. */
  private pipeline(
    facts: BuildFacts,
    artifacts: readonly ArtifactRecord[],
    packages: readonly SbomPackage[],
  ): { buildroot: BuildrootItem[]; steps: SbomStep[] } {
    const { build } = facts;
    const tasks = facts.tasks.filter((t) => t.kind !== 'repomd');
    const items = new Map<string, BuildrootItem>();
    for (const t of tasks) {
      const r = buildrootOf(t.result);
      if (!r) continue;
      for (const [name, version] of Object.entries(r.tools ?? {}))
        items.set(`tool ${name} ${version}`, { name, version, manager: 'tool' });
      const manager = r.packageManager === 'rpm' || r.packageManager === 'dpkg' ? r.packageManager : null;
      if (manager)
        for (const p of r.packages ?? [])
          items.set(`${manager} ${p.name} ${p.version}`, { name: p.name, version: p.version, manager });
      // A target's buildroot: every installed package, by digest, with the snapshot it came from.
      for (const p of r.installed ?? []) {
        const n = parseNevra(p.nevra);
        const version = `${n.epoch ? `${n.epoch}:` : ''}${n.version}-${n.release}`;
        items.set(`rpm ${p.nevra}`, {
          name: n.name,
          version,
          manager: 'rpm',
          arch: n.arch,
          sha256: p.sha256,
          origin: p.repo === 'host' ? 'host' : `${p.repo}@${p.snapshotId}`,
        });
      }
    }
    const documented = new Set(packages.map((p) => p.sha256));
    const agentName = (t: TaskRecord) =>
      t.agentId === null ? null : (facts.agentNames.get(t.agentId) ?? `agent-${t.agentId}`);
    const uid = (t: TaskRecord) => `task:${t.id}`;
    const ofKind = (k: string) => tasks.filter((t) => t.kind === k).map(uid);
    const steps: SbomStep[] = [];
    for (const t of tasks) {
      const after =
        t.kind === 'binary'
          ? ofKind('srpm')
          : t.kind === 'sign'
            ? ofKind('binary')
            : t.kind === 'test'
              ? ofKind('sign')
              : [];
      // Outputs are named by the file as served: a signed package stands for the package it signed.
      const outputs = artifacts
        .filter((a) => a.taskId === t.id)
        .flatMap((a) => [a, ...artifacts.filter((s) => s.parentId === a.id)])
        .map((a) => a.sha256)
        .filter((s) => documented.has(s));
      steps.push({
        uid: uid(t),
        name: t.kind === 'binary' ? `build ${t.arch}` : t.kind,
        type: t.kind === 'test' ? 'test' : t.kind === 'sign' ? 'other' : 'build',
        buildId: build.id,
        node: agentName(t),
        state: t.state,
        start: iso(t.startedAt),
        end: iso(t.finishedAt),
        after,
        outputs: [...new Set(outputs)].sort(),
      });
    }
    return {
      buildroot: [...items.values()].sort((a, b) => byCodeUnits(`${a.manager} ${a.name}`, `${b.manager} ${b.name}`)),
      steps,
    };
  }

  /** Render, then make sure the ledger holds this document's digest (one statement per distinct document). */
  private async serve(input: SbomInput, format: SbomFormat): Promise<ServedSbom> {
    const body = renderSbom(input, format);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const key = `sha256:${sha256}`;
    const known = (await this.ledger.store.lookupStages(key)).find((e) => e.kind === 'sbom');
    const entry =
      known?.index ??
      (await this.ledger.record(
        'sbom',
        sbomStatement({
          sha256,
          format,
          mediaType: SBOM_MEDIA_TYPES[format],
          describes: input.identity,
          name: `${input.identity.replace(/[^A-Za-z0-9.-]/g, '-')}.${format}`,
        }),
        [key, `sbom-of:${input.identity}`],
      ));
    return { body, mediaType: SBOM_MEDIA_TYPES[format], sha256, entry };
  }
}

/** What an SBOM says of a package from its header alone. */
function headerFacts(h: RpmHeader) {
  const info = packageInfo(h);
  const buildTime = num(h, TAG.BUILDTIME);
  return {
    name: info.name,
    epoch: info.epoch,
    version: info.version,
    release: info.release,
    arch: info.arch,
    license: str(h, TAG.LICENSE),
    summary: str(h, TAG.SUMMARY),
    url: str(h, TAG.URL),
    sourceRpm: info.sourceRpm,
    requires: [...new Set(strings(h, TAG.REQUIRENAME))].sort(),
    provides: [...new Set(strings(h, TAG.PROVIDENAME))].sort(),
    buildTime: buildTime === null ? null : new Date(buildTime * 1000).toISOString(),
  };
}
