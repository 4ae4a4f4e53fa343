import type { TaskResult } from '../core/protocol.js';
import type { AgentRole, BuildState, TaskKind, TaskState } from '../scheduler/task-state.js';

/** Typed records the store hands out; rows are parsed into these once, at the store's edge. */
export interface SourceRecord {
  readonly id: number;
  readonly name: string;
  readonly url: string;
  readonly branch: string;
  readonly watch: boolean;
  readonly createdAt: number;
  readonly lastFetchedAt: number | null;
  readonly lastSeenCommit: string | null;
  /** The build target pushed and watched commits are built for (null: the host toolchain). */
  readonly targetId: number | null;
  /** Whether a webhook secret is set (the secret itself is read only to check a push). */
  readonly hook: boolean;
}

export interface CommitRecord {
  readonly id: number;
  readonly sourceId: number;
  readonly sha: string;
  readonly tree: string;
  readonly committedAt: number;
  readonly subject: string;
}

/** A binary package a spec declares: its name and `[epoch:]version-release`. */
export interface DeclaredPackage {
  readonly name: string;
  readonly evr: string;
}

export interface BuildRecord {
  readonly id: number;
  readonly sourceId: number;
  readonly sourceName: string;
  readonly commit: CommitRecord;
  readonly ref: string;
  readonly state: BuildState;
  readonly priority: number;
  readonly arches: readonly string[];
  readonly specPath: string;
  readonly packageName: string;
  readonly packageEvr: string;
  /** Binary packages the spec declares (subpackages included); null for builds made before migration 0008. */
  readonly declaredPackages: readonly DeclaredPackage[] | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly reasonCode: string | null;
  readonly reason: string | null;
  readonly targetRepo: string | null;
  /** The build target it was built for (null: the host toolchain, --nodeps). */
  readonly targetId: number | null;
  /** The batch (chain build) it was started by, if any. */
  readonly batchId: number | null;
}

/** A package imported rather than built (bootstrap or upstream RPMs), with what its signature was checked against. */
export interface ImportRecord {
  readonly id: number;
  readonly sha256: string;
  readonly name: string;
  readonly nevra: string;
  readonly arch: string;
  readonly kind: 'rpm' | 'srpm';
  readonly size: number;
  /** The key its signature verified against; null when imported unsigned (`--allow-unsigned`, recorded). */
  readonly keyFingerprint: string | null;
  readonly repo: string;
  readonly importedBy: string;
  readonly createdAt: number;
}

export type BatchState = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Builds of one target in dependency order: each group starts when the previous group's packages have landed. */
export interface BatchRecord {
  readonly id: number;
  readonly targetId: number;
  readonly groups: readonly (readonly string[])[];
  /** The builds of each group started so far (same order as groups). */
  readonly builds: readonly (readonly number[])[];
  readonly state: BatchState;
  readonly reason: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly finishedAt: number | null;
}

/** A dnf repository outside Lenix: its URL and the key its metadata and packages are signed with. */
export interface ExternalRepo {
  readonly url: string;
  readonly key: string;
}

/** A build target: what builds of it are built against (repositories, macros) and for (arches, release). */
export interface TargetRecord {
  readonly id: number;
  readonly name: string;
  /** The repository every succeeded, signed build of the target lands in at once (its buildroots' source). */
  readonly buildRepo: string;
  /** Further repositories the buildroots draw from, in order. */
  readonly fromRepos: readonly string[];
  /** Repositories outside Lenix (upstream BaseOS, EPEL ...), their metadata and packages checked with a key. */
  readonly externalRepos: readonly ExternalRepo[];
  readonly arches: readonly string[];
  /** rpm macros set in every build of the target (dist, rhel, vendor, ...). */
  readonly macros: Readonly<Record<string, string>>;
  /** The repository releases of its builds usually go to (the test root includes its snapshot). */
  readonly releaseTo: string | null;
  /** The platform (el9): its package is installed in every buildroot, its macros apply to every task. */
  readonly platform: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TaskRecord {
  readonly id: number;
  readonly buildId: number;
  readonly sourceId: number;
  readonly kind: TaskKind;
  readonly role: AgentRole;
  readonly arch: string;
  readonly state: TaskState;
  readonly priority: number;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly fencingToken: number;
  readonly leaseId: number | null;
  readonly agentId: number | null;
  readonly cancelRequested: boolean;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly reasonCode: string | null;
  readonly reason: string | null;
  readonly result: TaskResult | null;
  readonly logSize: number;
  readonly subject: Readonly<Record<string, unknown>> | null;
}

export interface AgentRecord {
  readonly id: number;
  readonly name: string;
  readonly role: AgentRole;
  readonly arches: readonly string[];
  readonly capabilities: Readonly<Record<string, unknown>>;
  readonly tokenId: number;
  readonly registeredAt: number;
  readonly lastSeenAt: number;
}

export interface LeaseRecord {
  readonly id: number;
  readonly taskId: number;
  readonly agentId: number;
  readonly fencingToken: number;
  readonly acquiredAt: number;
  readonly expiresAt: number;
  readonly endedAt: number | null;
  readonly outcome: string | null;
}

export type ArtifactKind = 'srpm' | 'rpm' | 'signed-srpm' | 'signed-rpm' | 'log' | 'buildroot';
export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['srpm', 'rpm', 'signed-srpm', 'signed-rpm', 'log', 'buildroot'];
export const isPackageKind = (k: ArtifactKind): boolean =>
  k === 'srpm' || k === 'rpm' || k === 'signed-srpm' || k === 'signed-rpm';
export const isSourceKind = (k: ArtifactKind): boolean => k === 'srpm' || k === 'signed-srpm';

export interface ArtifactRecord {
  readonly id: number;
  readonly buildId: number;
  readonly taskId: number;
  readonly sha256: string;
  readonly size: number;
  readonly name: string;
  readonly kind: ArtifactKind;
  readonly arch: string | null;
  readonly nevra: string | null;
  readonly parentId: number | null;
  readonly createdAt: number;
  readonly signedBy: string | null;
  /** When its bytes were pruned by policy (the record and its ledger statements stay); null: kept. */
  readonly prunedAt: number | null;
}

export interface KeyRecord {
  readonly fingerprint: string;
  readonly name: string;
  readonly algorithm: string;
  readonly publicKey: string;
  readonly createdAt: number;
}

export interface RepoKey {
  readonly fingerprint: string;
  readonly addedAt: number;
  readonly retiredAt: number | null;
}

export interface RepoRecord {
  readonly id: number;
  readonly name: string;
  readonly arches: readonly string[];
  readonly keys: readonly RepoKey[];
  readonly currentSnapshotId: number | null;
  readonly keepDays: number;
  /** How many versions of each package (name.arch) the repository keeps, newest first; 0: all. */
  readonly keepVersions: number;
  readonly createdAt: number;
  /** SBOM identity: the purl namespace and distro qualifier (null: the server's defaults). */
  readonly vendor: string | null;
  readonly distro: string | null;
  /** Errata: the id prefix (AL → ALSA/ALBA/ALEA; null: the server's) and the registered OSV ecosystem. */
  readonly errataPrefix: string | null;
  readonly osvEcosystem: string | null;
  /** The target whose builds the repository follows, and whether each one that passes the gates is released at once. */
  readonly followTargetId: number | null;
  readonly autoRelease: boolean;
}

export type ReleaseState = 'planned' | 'approved' | 'publishing' | 'published' | 'failed' | 'rejected';

export interface ReleaseRecord {
  readonly id: number;
  readonly repoId: number;
  readonly state: ReleaseState;
  readonly builds: readonly number[];
  readonly plan: Readonly<Record<string, unknown>>;
  readonly overrideReason: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly approvedBy: string | null;
  readonly approvedAt: number | null;
  readonly snapshotId: number | null;
  readonly finishedAt: number | null;
  readonly reasonCode: string | null;
  readonly reason: string | null;
}

export interface SnapshotPackage {
  readonly artifactId: number;
  readonly sha256: string;
  readonly name: string;
  readonly arch: string;
  readonly nevra: string;
  readonly buildId: number;
  /** An imported package (buildId 0): its import record. */
  readonly importId?: number;
}

export type SnapshotState = 'building' | 'signing' | 'ready' | 'failed';

export interface SnapshotRecord {
  readonly id: number;
  readonly repoId: number;
  readonly releaseId: number | null;
  readonly state: SnapshotState;
  readonly packages: readonly SnapshotPackage[];
  readonly repomd: Readonly<Record<string, string>> | null;
  readonly keyFingerprint: string | null;
  readonly createdAt: number;
  readonly publishedAt: number | null;
  /** Advisories the snapshot's updateinfo.xml carries (those approved ones become released when it goes live). */
  readonly advisories: readonly string[];
  /** Its metadata files in the blob store ("ARCH/repodata/NAME" → sha256) when that store is shared; else null. */
  readonly files: Readonly<Record<string, string>> | null;
}

export interface TokenRecord {
  readonly id: number;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly createdAt: number;
  readonly revokedAt: number | null;
  /** After this time the token is refused; null: never. */
  readonly expiresAt: number | null;
}

export interface EventRecord {
  readonly id: number;
  readonly at: number;
  readonly kind: string;
  readonly buildId: number | null;
  readonly taskId: number | null;
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * A package's rpm-md entries (primary, filelists, other) as stored: each one gzip member, and the length of its
 * plain text (src/rpm/package-metadata.ts).
 */
export interface PackageMetadataRecord {
  readonly sha256: string;
  readonly file: string;
  readonly size: Readonly<Record<'primary' | 'filelists' | 'other', number>>;
  readonly gz: Readonly<Record<'primary' | 'filelists' | 'other', Uint8Array>>;
}
