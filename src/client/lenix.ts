import type { Readable } from 'node:stream';
import type { ProofBundle } from '../attest/verify-chain.js';
import type {
  presentAdvisory,
  presentAgent,
  presentBatch,
  presentBuild,
  presentImport,
  presentRelease,
  presentRepo,
  presentSnapshot,
  presentSource,
  presentTarget,
  presentToken,
} from '../server/api/present.js';
import type { ApiClient } from './http.js';

/**
 * The wire types: what the server's presenters (server/api/present.ts) return, as JSON. A type-only import:
 * the client shares the server's contract, not its code.
 */
export type TaskJson = NonNullable<ReturnType<typeof presentBuild>['tasks']>[number];
export type BuildJson = ReturnType<typeof presentBuild> & { tasks?: TaskJson[] };
export type SourceJson = ReturnType<typeof presentSource>;
export type AgentJson = ReturnType<typeof presentAgent>;
export type TokenJson = ReturnType<typeof presentToken>;
export type RepoJson = ReturnType<typeof presentRepo>;
export type ReleaseJson = ReturnType<typeof presentRelease>;
export type SnapshotJson = ReturnType<typeof presentSnapshot>;
export type AdvisoryJson = ReturnType<typeof presentAdvisory>;
export type TargetJson = ReturnType<typeof presentTarget>;
export type BatchJson = ReturnType<typeof presentBatch>;
export type ImportJson = ReturnType<typeof presentImport>;
export interface TargetFieldsJson {
  buildRepo: string;
  fromRepos: string[];
  externalRepos: { url: string; key: string }[];
  arches: string[];
  macros: Record<string, string>;
  releaseTo: string | null;
  /** A platform Lenix maintains (el9): EL macros, build shell and flags in every buildroot. */
  platform: string | null;
}
export type SbomTarget =
  | { readonly build: number }
  | { readonly artifact: string }
  | { readonly repo: string; readonly snapshot: string };

const enc = encodeURIComponent;
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Typed calls for every API resource the CLI, the agents and the tests use, so no caller spells an
 * `/api/v1/...` path. The agent protocol has its own client (agent.ts); `http` stays reachable for raw use.
 */
/** A registered mirror, as the API shows it. */
export interface MirrorJson {
  readonly url: string;
  readonly rsyncUrl: string | null;
  readonly country: string | null;
  readonly contact: string | null;
  readonly createdAt: number;
  /** The checker's last finding per repository arch (none until the first check). */
  readonly checks?: readonly MirrorCheckJson[];
}

export interface MirrorCheckJson {
  readonly mirrorUrl: string;
  readonly repo: string;
  readonly arch: string;
  readonly state: 'current' | 'behind' | 'bad' | 'unreachable';
  readonly snapshotId: number | null;
  readonly behind: number | null;
  readonly sha256: string | null;
  readonly detail: string | null;
  readonly checkedAt: number;
}

export class LenixClient {
  constructor(readonly http: ApiClient) {}

  get base(): string {
    return this.http.base;
  }

  readonly sources = {
    list: () => this.http.json<{ sources: SourceJson[] }>('GET', '/api/v1/sources'),
    add: (body: {
      name: string;
      url: string;
      branch?: string | undefined;
      watch?: boolean;
      target?: string | undefined;
    }) => this.http.json<SourceJson & { head: string; build: BuildJson | null }>('POST', '/api/v1/sources', body),
    hookSecret: (name: string) =>
      this.http.json<{ source: string; secret: string; url: string }>(
        'POST',
        `/api/v1/sources/${enc(name)}/hook-secret`,
        {},
      ),
  };

  readonly builds = {
    list: (q: { limit?: number | string; source?: string | undefined; state?: string | undefined } = {}) => {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined) query.set(k, String(v));
      return this.http.json<{ builds: BuildJson[] }>('GET', `/api/v1/builds?${query}`);
    },
    get: (id: number) => this.http.json<BuildJson>('GET', `/api/v1/builds/${id}`),
    create: (body: {
      source: string;
      ref?: string | undefined;
      priority?: number | undefined;
      arches?: string[] | undefined;
      repo?: string | undefined;
      target?: string | undefined;
    }) => this.http.json<BuildJson>('POST', '/api/v1/builds', body),
    cancel: (id: number) => this.http.json<BuildJson>('POST', `/api/v1/builds/${id}/cancel`, {}),
    /** Poll the build until it ends, reporting each task's state change once. */
    wait: async (id: number, progress: (line: string) => void = () => undefined): Promise<BuildJson> => {
      const seen = new Map<number, string>();
      for (;;) {
        const b = await this.builds.get(id);
        for (const t of b.tasks ?? []) {
          if (seen.get(t.id) === t.state) continue;
          seen.set(t.id, t.state);
          const why = t.reason && t.state !== 'leased' ? ` (${t.reasonCode}: ${t.reason})` : '';
          progress(`  task ${t.id} ${t.kind === 'srpm' ? 'srpm' : t.arch}: ${t.state}${why}`);
        }
        if (FINISHED.has(b.state)) return b;
        await sleep(500);
      }
    },
  };

  readonly tasks = {
    /** The whole log as stored so far. */
    log: async (id: number): Promise<Buffer> =>
      Buffer.from(await (await this.http.request('GET', `/api/v1/tasks/${id}/log`)).arrayBuffer()),
    /** The log as Server-Sent Events until the task ends (cli/follow.ts reads them). */
    follow: (id: number, signal?: AbortSignal) =>
      this.http.request('GET', `/api/v1/tasks/${id}/log?follow=1`, signal ? { signal } : {}),
  };

  readonly agents = {
    list: () => this.http.json<{ agents: AgentJson[] }>('GET', '/api/v1/agents'),
  };

  readonly lookaside = {
    upload: async (name: string, body: Readable, source?: string) =>
      (await (
        await this.http.request('PUT', `/api/v1/lookaside?name=${enc(name)}${source ? `&source=${enc(source)}` : ''}`, {
          body,
        })
      ).json()) as {
        sha256: string;
        size: number;
        /** The line for the source's `.NAME.metadata` (when the source was named). */
        metadataLine: string | null;
        layouts: { specs: string; root: string };
      },
    /** Download a lookaside file to `file`, checked against its digest. */
    download: (sha256: string, file: string) => this.http.download(`/api/v1/lookaside/${sha256}`, file, sha256),
  };

  readonly tokens = {
    create: (body: { name: string; scopes: string[]; expiresInDays?: number | undefined }) =>
      this.http.json<TokenJson & { token: string }>('POST', '/api/v1/tokens', body),
    list: () => this.http.json<{ tokens: TokenJson[] }>('GET', '/api/v1/tokens'),
    revoke: (id: number) => this.http.json<TokenJson>('DELETE', `/api/v1/tokens/${id}`),
  };

  readonly keys = {
    list: () =>
      this.http.json<{
        signingKey: string | null;
        keys: { fingerprint: string; name: string; algorithm: string; createdAt: string }[];
      }>('GET', '/api/v1/keys'),
    add: (publicKey: string, use: 'signing' | 'verify' = 'signing') =>
      this.http.json<{ fingerprint: string; name: string; algorithm: string }>('POST', '/api/v1/keys', {
        publicKey,
        use,
      }),
    setSigning: (fingerprint: string) =>
      this.http.json<{ signingKey: string }>('PUT', '/api/v1/keys/signing', { fingerprint }),
  };

  readonly targets = {
    list: () => this.http.json<{ targets: TargetJson[] }>('GET', '/api/v1/targets'),
    get: (name: string) => this.http.json<TargetJson>('GET', `/api/v1/targets/${enc(name)}`),
    create: (body: { name: string } & Partial<TargetFieldsJson> & Pick<TargetFieldsJson, 'buildRepo' | 'arches'>) =>
      this.http.json<TargetJson>('POST', '/api/v1/targets', body),
    edit: (name: string, body: Partial<TargetFieldsJson>) =>
      this.http.json<TargetJson>('PATCH', `/api/v1/targets/${enc(name)}`, body),
  };

  readonly imports = {
    list: () => this.http.json<{ imports: ImportJson[] }>('GET', '/api/v1/imports'),
    /** Upload one package; the server checks its signature against `key` (or that it is unsigned). */
    upload: async (
      name: string,
      body: Readable,
      q: { repo: string; key?: string | undefined; allowUnsigned?: boolean | undefined },
    ) => {
      const query = new URLSearchParams({ name, repo: q.repo, allowUnsigned: q.allowUnsigned ? '1' : '0' });
      if (q.key) query.set('key', q.key);
      return (await (await this.http.request('PUT', `/api/v1/imports?${query}`, { body })).json()) as ImportJson;
    },
  };

  /** An artifact's record: what it is, and whether its bytes were pruned (404 for anything else). */
  artifactMeta(sha256: string) {
    return this.http.json<{ name: string; kind: string; buildId: number; prunedAt: string | null }>(
      'GET',
      `/api/v1/artifacts/${enc(sha256)}/meta`,
    );
  }

  /** Retention: prune old snapshots and unreferenced artifacts' bytes (admin). */
  prune(body: { keepDays: number; keepBuilds: number; dryRun?: boolean }) {
    return this.http.json<{
      dryRun: boolean;
      snapshots: number;
      artifacts: { sha256: string; name: string; kind: string; buildId: number; size: number }[];
      bytes: number;
    }>('POST', '/api/v1/prune', body);
  }

  readonly batches = {
    list: () => this.http.json<{ batches: BatchJson[] }>('GET', '/api/v1/batches'),
    get: (id: number) => this.http.json<BatchJson>('GET', `/api/v1/batches/${id}`),
    create: (body: { target: string; groups?: string[][]; sources?: string[] }) =>
      this.http.json<BatchJson>('POST', '/api/v1/batches', body),
    rebuild: (target: string) => this.http.json<BatchJson>('POST', `/api/v1/targets/${enc(target)}/rebuild`, {}),
    cancel: (id: number) => this.http.json<BatchJson>('POST', `/api/v1/batches/${id}/cancel`, {}),
    /** Poll the batch until it ends, reporting each build's state change once. */
    wait: async (id: number, progress: (line: string) => void = () => undefined): Promise<BatchJson> => {
      const seen = new Map<number, string>();
      for (;;) {
        const b = await this.batches.get(id);
        for (const g of b.groups)
          for (const x of g.builds)
            if (x.state !== null && seen.get(x.id) !== x.state) {
              seen.set(x.id, x.state);
              progress(`  build ${x.id} ${x.source ?? ''}: ${x.state}`);
            }
        if (b.state !== 'running') return b;
        await sleep(500);
      }
    },
  };

  readonly mirrors = {
    list: () => this.http.json<{ mirrors: MirrorJson[] }>('GET', '/api/v1/mirrors'),
    add: (m: { url: string; rsyncUrl?: string; country?: string; contact?: string }) =>
      this.http.json<MirrorJson>('POST', '/api/v1/mirrors', m),
    remove: (url: string) => this.http.json('DELETE', `/api/v1/mirrors?url=${enc(url)}`),
    check: (url?: string) =>
      this.http.json<{ checks: MirrorCheckJson[] }>('POST', '/api/v1/mirrors/check', url ? { url } : {}),
  };

  readonly repos = {
    list: () => this.http.json<{ repos: RepoJson[] }>('GET', '/api/v1/repos'),
    get: (name: string) =>
      this.http.json<RepoJson & { snapshots: SnapshotJson[]; releases: ReleaseJson[] }>(
        'GET',
        `/api/v1/repos/${enc(name)}`,
      ),
    create: (body: {
      name: string;
      arches: string[];
      keys: string[];
      keepDays?: number;
      keepVersions?: number;
      vendor?: string;
      distro?: string;
      errataPrefix?: string;
      osvEcosystem?: string;
      follow?: string;
      autoRelease?: boolean;
    }) => this.http.json<RepoJson>('POST', '/api/v1/repos', body),
    keys: (name: string, body: { add?: string | undefined; retire?: string | undefined }) =>
      this.http.json<RepoJson>('POST', `/api/v1/repos/${enc(name)}/keys`, body),
    expire: (name: string) =>
      this.http.json<{ repo: string; through: number }>('POST', `/api/v1/repos/${enc(name)}/expire`, {}),
    rollback: (name: string, snapshot?: number) =>
      this.http.json<{ current: number }>(
        'POST',
        `/api/v1/repos/${enc(name)}/rollback`,
        snapshot === undefined ? {} : { snapshot },
      ),
  };

  readonly releases = {
    list: () => this.http.json<{ releases: ReleaseJson[] }>('GET', '/api/v1/releases'),
    get: (id: number) => this.http.json<ReleaseJson>('GET', `/api/v1/releases/${id}`),
    create: (body: {
      repo: string;
      builds: number[];
      imports?: number[] | undefined;
      approve?: boolean | undefined;
      override?: string | undefined;
    }) => this.http.json<ReleaseJson>('POST', '/api/v1/releases', body),
    approve: (id: number) => this.http.json<ReleaseJson>('POST', `/api/v1/releases/${id}/approve`, {}),
    /** Poll the release until it is published, failed or rejected. */
    wait: async (id: number): Promise<ReleaseJson> => {
      for (;;) {
        const r = await this.releases.get(id);
        if (r.state === 'published' || r.state === 'failed' || r.state === 'rejected') return r;
        await sleep(300);
      }
    },
  };

  readonly errata = {
    list: (q: URLSearchParams) => this.http.json<{ errata: AdvisoryJson[] }>('GET', `/api/v1/errata?${q}`),
    get: (id: string) => this.http.json<AdvisoryJson>('GET', `/api/v1/errata/${enc(id)}`),
    create: (body: Record<string, unknown>) => this.http.json<AdvisoryJson>('POST', '/api/v1/errata', body),
    update: (id: string, body: Record<string, unknown>) =>
      this.http.json<AdvisoryJson>('PATCH', `/api/v1/errata/${enc(id)}`, body),
    approve: (id: string) => this.http.json<AdvisoryJson>('POST', `/api/v1/errata/${enc(id)}/approve`, {}),
    import: (body: { repo: string; content: string }) =>
      this.http.json<{ proposed: AdvisoryJson[]; skipped: { upstream: string; why: string }[] }>(
        'POST',
        '/api/v1/errata/import',
        body,
      ),
  };

  readonly ledger = {
    /** The log's public keys, one per line (/ledger/keys). */
    keys: async () => (await (await this.http.request('GET', '/ledger/keys')).text()).trim().split('\n'),
    /** The signed checkpoint note (C2SP tlog-checkpoint). */
    checkpoint: async (signal?: AbortSignal) =>
      (await this.http.request('GET', '/ledger/checkpoint', signal ? { signal } : {})).text(),
    lookup: (query: string | URLSearchParams) => this.http.json<ProofBundle>('GET', `/api/v1/ledger/lookup?${query}`),
    /** Proof bundles for installed packages, by header digest (SHA256HEADER); digests the log does not name are left out. */
    lookupHeaders: (headers: readonly string[]) =>
      this.http.json<{ bundles: Record<string, ProofBundle> }>('POST', '/api/v1/ledger/lookup', { headers }),
    consistency: (from: number, to: number, signal?: AbortSignal) =>
      this.http.json<{ proof: string[] }>('GET', `/api/v1/ledger/consistency?from=${from}&to=${to}`, undefined, signal),
    witnesses: {
      list: () => this.http.json<{ witnesses: string[] }>('GET', '/api/v1/ledger/witnesses'),
      add: (url: string) => this.http.json('POST', '/api/v1/ledger/witnesses', { url }),
      remove: (url: string) => this.http.json('DELETE', '/api/v1/ledger/witnesses', { url }),
    },
  };

  /** An SBOM of a build, a package (by digest) or a repository snapshot, in one of SBOM_FORMATS. */
  sbom(target: SbomTarget, format: string): Promise<Response> {
    const path =
      'build' in target
        ? `/api/v1/builds/${target.build}/sbom`
        : 'artifact' in target
          ? `/api/v1/artifacts/${target.artifact}/sbom`
          : `/api/v1/repos/${enc(target.repo)}/snapshots/${enc(target.snapshot)}/sbom`;
    return this.http.request('GET', `${path}?format=${enc(format)}`);
  }
}
