import type { Logger } from 'pino';
import type { SandboxLimits } from '../rpm/sandbox.js';
import type { Clock } from '../core/clock.js';
import type { Leader } from './leadership.js';
import type { Metrics } from './metrics.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ReleaseStore } from '../store/release-store.js';
import type { Store } from '../store/store.js';
import type { Notifier } from './notifier.js';

/** Everything the server's services need, passed in explicitly (no module singletons). */
export interface ServerConfig {
  readonly dataDir: string;
  /** Target architectures a build fans out to (filtered by ExclusiveArch/ExcludeArch). */
  readonly arches: readonly string[];
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly maxJsonBytes: number;
  readonly maxUploadBytes: number;
  readonly maxLogChunkBytes: number;
  readonly longPollMaxMs: number;
  readonly watchIntervalMs: number;
  /** The spec-parsing sandbox's limits (time, memory, disk, processes, files, output). */
  readonly specCheckLimits: SandboxLimits;
  /** Folders on the server's disk that sources may be mirrored from; a local path elsewhere is refused. */
  readonly localSourceRoots: readonly string[];
  /** Where the ledger's signing keys are (default DATA/ledger); servers sharing one log share this folder's keys. */
  readonly ledgerKeysDir?: string;
  /** Blobs no record references are removed once this old (rejected uploads); checked every blobGcIntervalMs. */
  readonly blobGraceMs: number;
  readonly blobGcIntervalMs: number;
  /** Log bytes kept per task; an agent sending more is refused with LOG_TOO_LARGE. */
  readonly maxLogBytes: number;
  /**
   * How long a repository's previous repomd.xml stays acceptable in its metalinks (`mm0:alternates`) after a
   * newer one went live, so that mirrors still syncing keep serving (`lenix repo expire` drops them at once).
   */
  readonly metalinkGraceMs: number;
  /** Retention run with the blob collector (`lenix prune` by policy); null: only when an administrator runs it. */
  readonly prune: { readonly keepDays: number; readonly keepBuilds: number } | null;
  /** How often the mirror checker fetches every mirror's repomd.xml (0: only on demand, `lenix mirror check`). */
  readonly mirrorCheckMs: number;
  /** The ledger's origin line (C2SP tlog-checkpoint), also the name of its key. */
  readonly ledgerOrigin: string;
  /** C2SP tlog-witness URLs asked to cosign each new checkpoint. */
  readonly witnesses: readonly string[];
  /** SBOM identity where a repository sets none: supplier name, purl vendor namespace, distro qualifier. */
  readonly sbomSupplier: string;
  readonly sbomVendor: string;
  readonly sbomDistro: string;
  /** Errata: the default id prefix (LX → LXSA/LXBA/LXEA), the `from` and `rights` of updateinfo. */
  readonly errataPrefix: string;
  readonly errataFrom: string;
  readonly errataRights: string;
  /** The server's public URL, for links in exports (OSV references, OVAL, the feed). */
  readonly publicUrl: string;
}

export const DEFAULT_CONFIG: Omit<ServerConfig, 'dataDir' | 'arches'> = {
  leaseMs: 30_000,
  maxAttempts: 3,
  maxJsonBytes: 1024 * 1024,
  maxUploadBytes: 4 * 1024 * 1024 * 1024,
  maxLogChunkBytes: 4 * 1024 * 1024,
  longPollMaxMs: 25_000,
  watchIntervalMs: 30_000,
  specCheckLimits: {
    timeoutMs: 60_000,
    memoryBytes: 2 * 1024 ** 3,
    diskBytes: 1024 ** 3,
    processes: 256,
    openFiles: 1024,
    logBytes: 1024 ** 2,
  },
  maxLogBytes: 256 * 1024 ** 2,
  metalinkGraceMs: 6 * 3_600_000,
  mirrorCheckMs: 30 * 60_000,
  prune: null,
  localSourceRoots: [],
  blobGraceMs: 24 * 3_600_000,
  blobGcIntervalMs: 3_600_000,
  ledgerOrigin: 'lenix.local/ledger',
  witnesses: [],
  sbomSupplier: 'Lenix',
  sbomVendor: 'lenix',
  sbomDistro: 'lenix',
  errataPrefix: 'LX',
  errataFrom: 'errata@lenix.local',
  errataRights: 'Copyright the Lenix distribution maintainers',
  publicUrl: '',
};

/** Records a stage's statement in the transparency ledger (services/ledger.ts); a no-op where there is none. */
export interface StatementSink {
  record(
    stage: import('../attest/statements.js').Stage,
    statement: import('../attest/statements.js').Statement,
    keys: readonly string[],
  ): Promise<number>;
}

export interface ServerDeps {
  readonly store: Store;
  readonly releases: ReleaseStore;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly notifier: Notifier;
  readonly log: Logger;
  readonly config: ServerConfig;
  /** Single-writer roles among servers on one database (leadership.ts). */
  readonly leader: Leader;
  /** Prometheus metrics (metrics.ts), made by createApp. */
  readonly metrics: Metrics;
}

/**
 * A service's narrow view of the server: only the parts (`K`) and store rooms (`S`) it uses, so its constructor
 * says what it touches and a test can hand it just that.
 */
export type DepsOf<K extends Exclude<keyof ServerDeps, 'store'>, S extends keyof Store = never> = Pick<
  ServerDeps,
  K
> & {
  readonly store: Pick<Store, S>;
};
