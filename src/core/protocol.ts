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
