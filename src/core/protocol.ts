import { z } from 'zod';
import { LenixError } from './errors.js';

/**
 * Messages of the agent protocol that both sides type-check against (architecture page, "Agent protocol").
 * Versioned with the API path (/api/v1); fields are only ever added.
 */

/** The kinds of task: an SRPM, a binary build per arch, signing, signing repository metadata, testing. */
export type TaskKind = 'srpm' | 'binary' | 'sign' | 'repomd' | 'test';

/** What a build node receives with a lease: everything it needs, nothing it should not see. */
export interface BuildTaskPayload {
  readonly taskId: number;
  readonly buildId: number;
  readonly kind: 'srpm' | 'binary';
  readonly arch: string;
  readonly source: { readonly name: string };
  readonly commit: { readonly sha: string; readonly tree: string; readonly committedAt: number };
  readonly specPath: string;
  readonly packageName: string;
  /** The source tree at the commit (git archive), relative to the server URL. */
  readonly archiveUrl: string;
  /** For binary tasks: the SRPM the SRPM task produced, to be verified by digest before use. */
  readonly srpm: { readonly sha256: string; readonly name: string; readonly url: string } | null;
  /**
   * The build target (null: the host toolchain with --nodeps, as builds without a target always were): its rpm
   * macros for every task, and for binary tasks the repositories the buildroot is installed from, at the
   * snapshots current when the task was leased.
   */
  readonly target?: BuildTargetPayload | null;
}

/** A target's macros as rpm command-line defines: the server parses specs with the same ones as build nodes. */
export function macroDefines(macros: Readonly<Record<string, string>>): string[] {
  return Object.entries(macros).flatMap(([k, v]) => ['--define', `${k} ${v}`]);
}

/** A repository snapshot a root is installed from: its packages (verified by digest) and its keys (gpgcheck). */
export interface RootRepo {
  readonly name: string;
  readonly snapshotId: number | null;
  readonly packages: readonly PackageRef[];
  readonly keyUrls: readonly string[];
}

export interface BuildTargetPayload {
  readonly name: string;
  readonly macros: Readonly<Record<string, string>>;
  /** The build repository first, then the target's other repositories. Empty for SRPM tasks. */
  readonly repos: readonly RootRepo[];
  /** Repositories outside Lenix, each with the key its metadata and packages must be signed with. */
  readonly external?: readonly { readonly url: string; readonly keyUrl: string }[];
  /**
   * The target's platform: its package, installed in every buildroot (recorded with it), and the macro file it
   * carries, which the SRPM task loads (and the build of the platform package itself, which cannot install it).
   */
  readonly platform?: PlatformPayload | null;
}

export interface PlatformPayload {
  readonly name: string;
  readonly package: string;
  readonly macros: string;
}

/** The file name a platform's macros are given in a task's input folder. */
export const PLATFORM_MACROS = 'platform.macros';

export interface PackageRef {
  readonly sha256: string;
  readonly name: string;
  readonly url: string;
  readonly kind: 'srpm' | 'rpm';
  readonly arch: string;
}

/** A signer's task: sign every package of a build with one key (the digests come from the build record). */
export interface SignTaskPayload {
  readonly kind: 'sign';
  readonly taskId: number;
  readonly buildId: number;
  readonly keyFingerprint: string;
  readonly packages: readonly PackageRef[];
}

/** A signer's task for a publish: armored detached signatures over repository metadata files. */
export interface RepomdTaskPayload {
  readonly kind: 'repomd';
  readonly taskId: number;
  readonly releaseId: number;
  readonly keyFingerprint: string;
  readonly files: readonly { readonly path: string; readonly sha256: string; readonly contentBase64: string }[];
}

/** A tester's task: install, verify, remove, lint and run the package's own tests for a signed build. */
export interface TestTaskPayload {
  readonly kind: 'test';
  readonly taskId: number;
  readonly buildId: number;
  readonly source: { readonly name: string };
  readonly keyFingerprint: string;
  readonly publicKeyUrl: string;
  readonly archiveUrl: string;
  readonly packages: readonly PackageRef[];
  /** The target repository's current snapshot (packages for the build's arch, and its keys), if any. */
  readonly target: {
    readonly name: string;
    readonly packages: readonly PackageRef[];
    readonly keyUrls: readonly string[];
  } | null;
  /** For a build of a build target: the target's build repository and its other repositories (dependencies). */
  readonly buildRepos?: readonly RootRepo[];
}

export type TaskPayload = BuildTaskPayload | SignTaskPayload | RepomdTaskPayload | TestTaskPayload;

/** The build root a build or SRPM task ran in, as its node describes it (recorded in statements and SBOMs). */
export interface BuildrootRecord {
  readonly hostOs: string;
  readonly kernel: string;
  readonly arch: string;
  readonly tools: Readonly<Record<string, string>>;
  readonly packageManager: 'rpm' | 'dpkg' | 'none';
  readonly packages: readonly { readonly name: string; readonly version: string }[];
  readonly sandbox: string;
  /** Builds of a target: the target, and every package installed in the buildroot, with where it came from. */
  readonly target?: string;
  readonly installed?: readonly InstalledPackage[];
  /** Whether the root came from the node's cache (same target snapshots and BuildRequires). */
  readonly cached?: boolean;
}

/** One package of a buildroot: NEVRA, the digest of the RPM file, the repository snapshot it came from. */
export interface InstalledPackage {
  readonly nevra: string;
  readonly sha256: string;
  /** A repository of the target, or `host` for the generated lenix-host-base (what the host offers). */
  readonly repo: string;
  readonly snapshotId: number | null;
}

/** One stage of a package test run (install, verify, lint, the package's own tests, removal…). */
export interface TestStage {
  readonly name: string;
  readonly outcome: 'passed' | 'failed' | 'skipped';
  readonly detail: string;
}

/** What an agent reports with `complete`, by task kind (success or failure alike). */
export interface BuildTaskResult {
  readonly buildroot: BuildrootRecord;
}
export interface SignTaskResult {
  readonly key: string;
  readonly signed: readonly { readonly name: string; readonly sha256: string; readonly parent: string }[];
}
export interface RepomdTaskResult {
  readonly key: string;
  readonly signatures: readonly { readonly path: string; readonly signature: string }[];
}
export interface TestTaskResult {
  readonly stages: readonly TestStage[];
  /** Architectures of the build's packages this tester could not install, and why (the release gate sees them). */
  readonly untested?: readonly { readonly arch: string; readonly reason: string }[];
}
export type TaskResult = BuildTaskResult | SignTaskResult | RepomdTaskResult | TestTaskResult;

/** What a test result may hold: the tester cuts its report to this, the server refuses more. */
export const TEST_STAGE_LIMITS = { stages: 1000, name: 100, detail: 4000 } as const;

const text = (max: number) => z.string().max(max);
const Buildroot = z.object({
  hostOs: text(500),
  kernel: text(500),
  arch: text(64),
  tools: z.record(text(100), text(500)),
  packageManager: z.enum(['rpm', 'dpkg', 'none']),
  packages: z.array(z.object({ name: text(300), version: text(300) })).max(100_000),
  sandbox: text(2000),
  target: text(64).optional(),
  installed: z
    .array(
      z.object({
        nevra: text(600),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        repo: text(600),
        snapshotId: z.number().int().positive().nullable(),
      }),
    )
    .max(100_000)
    .optional(),
  cached: z.boolean().optional(),
});
const Sha = z.string().regex(/^[0-9a-f]{64}$/);
/** The schema of each kind's result: an agent's report is parsed once, before it is stored. */
const RESULTS = {
  srpm: z.object({ buildroot: Buildroot }),
  binary: z.object({ buildroot: Buildroot }),
  sign: z.object({
    key: text(100),
    signed: z.array(z.object({ name: text(300), sha256: Sha, parent: Sha })).max(10_000),
  }),
  repomd: z.object({
    key: text(100),
    signatures: z.array(z.object({ path: text(500), signature: text(64 * 1024) })).max(1000),
  }),
  test: z.object({
    stages: z
      .array(
        z.object({
          name: text(TEST_STAGE_LIMITS.name),
          outcome: z.enum(['passed', 'failed', 'skipped']),
          detail: text(TEST_STAGE_LIMITS.detail),
        }),
      )
      .max(TEST_STAGE_LIMITS.stages),
    untested: z
      .array(z.object({ arch: z.string().regex(/^[a-z0-9_]{1,32}$/), reason: text(TEST_STAGE_LIMITS.detail) }))
      .max(32)
      .optional(),
  }),
} satisfies Record<TaskKind, z.ZodType<TaskResult>>;

/** An agent's result for a task of this kind, or a BAD_REQUEST naming the first field that does not fit. */
export function parseTaskResult(kind: TaskKind, value: unknown): TaskResult | null {
  if (value === null || value === undefined) return null;
  const r = RESULTS[kind].safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new LenixError(
    'BAD_REQUEST',
    `result of a ${kind} task: ${issue?.path.join('.') || 'result'}: ${issue?.message ?? 'invalid'}`,
  );
}

/** The readers of results, narrowed by shape (a result is whatever its task's kind stored). */
export const buildrootOf = (r: TaskResult | null): BuildrootRecord | null =>
  r && 'buildroot' in r ? r.buildroot : null;
export const testStagesOf = (r: TaskResult | null): readonly TestStage[] => (r && 'stages' in r ? r.stages : []);
export const untestedArchesOf = (r: TaskResult | null): NonNullable<TestTaskResult['untested']> =>
  r && 'stages' in r ? (r.untested ?? []) : [];
/** The stages of a test result, each untested arch added as a skipped stage (for statements and pages). */
export const testStagesWithArches = (r: TaskResult | null): readonly TestStage[] => [
  ...testStagesOf(r),
  ...untestedArchesOf(r).map((u) => ({
    name: `arch ${u.arch}`,
    outcome: 'skipped' as const,
    detail: `untested: ${u.reason}`,
  })),
];
export const metadataSignaturesOf = (r: TaskResult | null): RepomdTaskResult['signatures'] =>
  r && 'signatures' in r ? r.signatures : [];
