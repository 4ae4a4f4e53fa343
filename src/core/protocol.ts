/**
 * Messages of the agent protocol that both sides type-check against (architecture page, "Agent protocol").
 * Versioned with the API path (/api/v1); fields are only ever added.
 */

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
}

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
}

export type TaskPayload = BuildTaskPayload | SignTaskPayload | RepomdTaskPayload | TestTaskPayload;
