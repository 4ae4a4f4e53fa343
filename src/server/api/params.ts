import { z } from 'zod';
import { ADVISORY_ID_RE } from '../../errata/advisory.js';

/** The OpenAPI security requirement of every route that needs a token. */
export const security = [{ bearer: [] }];

/** Path and body fields several resources share, with the one-line reason a bad value gets. */
/** A row id in a path: a positive 32-bit integer. */
export const positiveId = z.coerce
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1);
export const Id = z.object({ id: positiveId });
export const Sha = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 digest: 64 lowercase hex characters'),
});
export const ARCH = z.string().regex(/^[a-z0-9_]{1,32}$/, 'an architecture name such as x86_64');
export const FPR = z.string().regex(/^[0-9A-Fa-f]{40}$/, 'a 40-hex-digit key fingerprint');
export const ADVISORY_ID = z.string().regex(ADVISORY_ID_RE, 'an advisory id such as LXSA-2026:0001');
