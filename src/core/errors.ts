/**
 * Lenix error codes. The union is closed: adding a code means adding it to both tables below and to
 * docs/errors.md (a test keeps the three in sync). Codes are append-only once released.
 */
export const ERROR_CODES = {
  // 400: the request is malformed
  BAD_REQUEST: { status: 400, exit: 2, doc: 'The request body, query or parameters do not match the schema.' },
  INVALID_NAME: {
    status: 400,
    exit: 2,
    doc: 'A file or object name is not a plain name (empty, `..`, `/`, control characters, too long).',
  },
  INVALID_DIGEST: { status: 400, exit: 2, doc: 'A SHA-256 digest is not 64 lowercase hex characters.' },
  // 401/403: who is asking
  UNAUTHENTICATED: {
    status: 401,
    exit: 3,
    doc: 'A write was attempted without a token, or with an unknown or revoked token.',
  },
  FORBIDDEN: { status: 403, exit: 3, doc: 'The token is valid but lacks the scope this action needs.' },
  HOOK_SIGNATURE_INVALID: {
    status: 401,
    exit: 3,
    doc: 'A push event (`POST /api/v1/sources/NAME/hook`) is not signed with the source’s webhook secret (`X-Hub-Signature-256`, or `X-Gitlab-Token`); nothing is fetched.',
  },
  HOOK_NOT_CONFIGURED: {
    status: 409,
    exit: 5,
    doc: 'A push event arrived for a source without a webhook secret: `lenix source hook NAME` makes one.',
  },
  // 404
  SOURCE_NOT_ALLOWED: {
    status: 403,
    exit: 3,
    doc: 'A local source path lies outside the folders the server allows (`lenix server --local-source-root DIR`).',
  },
  NOT_FOUND: { status: 404, exit: 4, doc: 'No route matches the request.' },
  SOURCE_NOT_FOUND: { status: 404, exit: 4, doc: 'No source with that name or id.' },
  BUILD_NOT_FOUND: { status: 404, exit: 4, doc: 'No build with that id.' },
  TASK_NOT_FOUND: { status: 404, exit: 4, doc: 'No task with that id.' },
  ARTIFACT_NOT_FOUND: { status: 404, exit: 4, doc: 'No artifact or blob with that digest.' },
  ARTIFACT_PRUNED: {
    status: 410,
    exit: 4,
    doc: "The artifact's bytes were pruned by the retention policy; its record and ledger statements stay.",
  },
  ERRATA_NOT_FOUND: { status: 404, exit: 4, doc: 'No advisory with that id.' },
  TOKEN_NOT_FOUND: { status: 404, exit: 4, doc: 'No token with that id.' },
  AGENT_NOT_FOUND: { status: 404, exit: 4, doc: 'No agent with that id.' },
  LEASE_NOT_FOUND: { status: 404, exit: 4, doc: 'No lease with that id.' },
  REF_NOT_FOUND: { status: 404, exit: 4, doc: 'The git ref does not exist in the source repository.' },
  KEY_NOT_FOUND: { status: 404, exit: 4, doc: 'No signing key with that fingerprint is known to the server.' },
  REPO_NOT_FOUND: { status: 404, exit: 4, doc: 'No repository with that name.' },
  MIRROR_NOT_FOUND: { status: 404, exit: 4, doc: 'No mirror with that URL is registered.' },
  RELEASE_NOT_FOUND: { status: 404, exit: 4, doc: 'No release with that id.' },
  TARGET_NOT_FOUND: { status: 404, exit: 4, doc: 'No build target with that name.' },
  SNAPSHOT_NOT_FOUND: {
    status: 404,
    exit: 4,
    doc: 'No snapshot with that id in that repository (or it is not ready).',
  },
  // 409: state conflicts
  SOURCE_EXISTS: { status: 409, exit: 5, doc: 'A source with that name already exists.' },
  STALE_FENCING_TOKEN: {
    status: 409,
    exit: 5,
    doc: "The fencing token is not the task's current one: another lease owns the task now.",
  },
  LEASE_EXPIRED: {
    status: 409,
    exit: 5,
    doc: 'The lease expired before this message arrived; the task went back to the queue.',
  },
  LEASE_ENDED: { status: 409, exit: 5, doc: 'The lease was already completed or cancelled.' },
  NOT_LEADER: {
    status: 409,
    exit: 5,
    doc: 'A server that lost a single-writer role (publisher) to another server tried to act on it; nothing was written, the new holder carries on.',
  },
  LOG_OFFSET_GAP: {
    status: 409,
    exit: 5,
    doc: 'A log append starts past the end of the stored log; the agent must resend from the stored size.',
  },
  BUILD_FINISHED: { status: 409, exit: 5, doc: 'The build already finished; it cannot be cancelled.' },
  MIRROR_EXISTS: { status: 409, exit: 5, doc: 'A mirror with that URL is registered already.' },
  REPO_EXISTS: { status: 409, exit: 5, doc: 'A repository with that name already exists.' },
  TARGET_EXISTS: { status: 409, exit: 5, doc: 'A build target with that name already exists.' },
  BUILD_ORDER_CYCLE: {
    status: 409,
    exit: 5,
    doc: 'The sources of a batch build need each other (BuildRequires → Provides form a cycle); the error prints the cycle. Nothing is built.',
  },
  RELEASE_BLOCKED: {
    status: 409,
    exit: 5,
    doc: 'A build in the release is not built, not signed or failed its tests, and no override reason was given.',
  },
  RELEASE_CONFLICT: {
    status: 409,
    exit: 5,
    doc: 'A package of the release has the NEVRA of a different package already in the repository.',
  },
  RELEASE_STATE: {
    status: 409,
    exit: 5,
    doc: 'The release is not in a state that allows this action (e.g. approving a published release).',
  },
  STATEMENT_MISSING: {
    status: 409,
    exit: 5,
    doc: 'An earlier stage of the build has no statement in the ledger yet, so this stage may not proceed.',
  },
  KEY_IN_USE: {
    status: 409,
    exit: 5,
    doc: "The key still signs packages in the repository's current snapshot, so it cannot be retired yet.",
  },
  ERRATA_EXISTS: { status: 409, exit: 5, doc: 'An advisory with that id already exists (ids are unique).' },
  ERRATA_STATE: {
    status: 409,
    exit: 5,
    doc: 'The advisory is not in a state that allows this (draft → approved → released; released packages never change).',
  },
  NO_SIGNING_KEY: {
    status: 409,
    exit: 5,
    doc: 'No signing key is configured (lenix keys use FINGERPRINT) or the repository has no active key.',
  },
  // 413/415/422
  REQUEST_TIMEOUT: { status: 408, exit: 7, doc: 'The request did not arrive completely in time.' },
  URI_TOO_LONG: { status: 414, exit: 2, doc: 'A path parameter is longer than the router accepts.' },
  HEADERS_TOO_LARGE: { status: 431, exit: 2, doc: 'The request headers are larger than the server accepts.' },
  BODY_TOO_LARGE: { status: 413, exit: 2, doc: 'The request body is larger than the configured limit.' },
  LOG_TOO_LARGE: {
    status: 413,
    exit: 2,
    doc: "A task's log would pass the server's per-task limit; the append is refused and nothing past the limit is stored.",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    exit: 2,
    doc: 'The request body has a content type this route does not accept.',
  },
  DIGEST_MISMATCH: {
    status: 422,
    exit: 6,
    doc: 'Uploaded bytes do not hash to the declared SHA-256; nothing was stored.',
  },
  SPEC_NOT_FOUND: { status: 422, exit: 6, doc: 'No spec file at the repository root or in SPECS/ at that commit.' },
  SPEC_INVALID: { status: 422, exit: 6, doc: 'The spec file does not parse (rpmspec, sandboxed, refused it).' },
  SPEC_MACRO_UNDEFINED: {
    status: 422,
    exit: 6,
    doc: "The spec's Version or Release still holds a macro after parsing (e.g. `%autorelease` where the build's platform does not define it): the EVR would be recorded and the SRPM named with it.",
  },
  LOOKASIDE_PATH_UNSAFE: {
    status: 422,
    exit: 6,
    doc: 'A `.NAME.metadata` line puts a lookaside file behind a symbolic link of the source tree (e.g. `SOURCES -> /root`); nothing is written through it.',
  },
  LOOKASIDE_INVALID: {
    status: 422,
    exit: 6,
    doc: 'A `.NAME.metadata` line is malformed, names a blob the lookaside area lacks, or a path rpmbuild will not read for the spec (`SOURCES/` beside `SPECS/`, the root beside a root spec).',
  },
  TARGET_INVALID: {
    status: 422,
    exit: 6,
    doc: 'A build target field is wrong: a macro name or value rpm would misread, an arch the target lacks, a repository named twice or missing.',
  },
  IMPORT_REFUSED: {
    status: 422,
    exit: 6,
    doc: 'An imported package is not signed by the given key (or not signed at all without --allow-unsigned), or its signature does not verify; nothing is stored.',
  },
  GIT_FAILED: { status: 422, exit: 6, doc: 'A git operation on the source repository failed (clone, fetch, archive).' },
  ERRATA_INVALID: {
    status: 422,
    exit: 6,
    doc: 'An advisory field is wrong: unknown type, missing or unknown severity, a malformed CVE id or link, a duplicate package.',
  },
  ERRATA_PACKAGE_UNKNOWN: {
    status: 422,
    exit: 6,
    doc: 'An advisory names a package that is neither in its repository nor built by Lenix (dnf matches advisories by exact NEVRA).',
  },
  PACKAGE_MISMATCH: {
    status: 422,
    exit: 6,
    doc: "An uploaded package is not one the task makes: its file name differs from its NEVRA, it is not built from the build's SRPM, its name is not declared by the spec, its arch is not the task's, or its version is not the spec's. Nothing is recorded.",
  },
  XML_INVALID_TEXT: {
    status: 422,
    exit: 6,
    doc: 'Text bound for an XML document (updateinfo, OVAL, Atom) holds a character XML 1.0 cannot carry (a C0 control other than tab or newline, a lone surrogate, U+FFFE/U+FFFF); nothing is written.',
  },
  NOT_AN_RPM: {
    status: 422,
    exit: 6,
    doc: 'The bytes are not an RPM package (bad lead or header magic, or truncated).',
  },
  KEY_INVALID: {
    status: 422,
    exit: 6,
    doc: 'The uploaded public key is not a single OpenPGP public key that gpg can read.',
  },
  SIGNATURE_INVALID: {
    status: 422,
    exit: 6,
    doc: 'An uploaded signature or signed package does not verify against the expected public key.',
  },
  // 5xx: the server's own failures
  BLOB_CORRUPT: { status: 500, exit: 7, doc: 'A stored blob no longer hashes to its name; it is not served.' },
  SANDBOX_UNAVAILABLE: {
    status: 500,
    exit: 7,
    doc: 'No unprivileged identity for sandboxes: running as root without the `lenix-build` user (the bootstrap creates it), or without user namespaces.',
  },
  SYSTEM_ROOT_INVALID: {
    status: 500,
    exit: 7,
    doc: 'A system root (`lenix node --root DIR`) is missing, incomplete or not one `lenix node root create` made, or cannot be made in that folder.',
  },
  EMULATION_UNAVAILABLE: {
    status: 500,
    exit: 7,
    doc: 'Programs of the root’s architecture cannot run here: no qemu-user binfmt_misc handler with the F flag (the bootstrap installs and enables them), or no debootstrap to make the root.',
  },
  INTERNAL: { status: 500, exit: 7, doc: 'An unexpected server error; the log has the details.' },
  SCHEMA_OUTDATED: {
    status: 503,
    exit: 7,
    doc: 'The database lacks migrations this server needs and it was started with --no-migrate: run `lenix migrate`.',
  },
  BLOB_STORE_UNAVAILABLE: {
    status: 503,
    exit: 7,
    doc: 'The object store (S3) refused or did not answer a request; nothing was recorded.',
  },
  UNAVAILABLE: { status: 503, exit: 7, doc: 'The server could not be reached or is shutting down.' },
} as const satisfies Record<string, { status: number; exit: number; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The one error class Lenix throws on purpose. Tests assert `code`, never `message`. */
export class LenixError extends Error {
  override readonly name = 'LenixError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
