import type { Kysely } from 'kysely';
import type { HeaderDigests } from '../core/header-digests.js';
import type { Database } from './schema.js';

/** Rows per query: well under SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 500;

/**
 * The header digests of package files (an rpm database's SHA256HEADER, SHA1HEADER, payload digest), by the file's
 * sha256. Content-addressed: a second put of the same file keeps the first.
 */
export class HeaderDigestStore {
  constructor(readonly db: Kysely<Database>) {}

  async put(rows: readonly { sha256: string; digests: HeaderDigests }[]): Promise<void> {
    for (let i = 0; i < rows.length; i += CHUNK)
      await this.db
        .insertInto('rpm_headers')
        .values(
          rows.slice(i, i + CHUNK).map((r) => ({
            sha256: r.sha256,
            header_sha256: r.digests.sha256,
            header_sha1: r.digests.sha1,
            payload_digest: r.digests.payload,
          })),
        )
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
  }

  /** The recorded digests of these files (files with none recorded are left out). */
  async of(sha256s: readonly string[]): Promise<Map<string, HeaderDigests>> {
    const out = new Map<string, HeaderDigests>();
    const all = [...new Set(sha256s)];
    for (let i = 0; i < all.length; i += CHUNK) {
      const rows = await this.db
        .selectFrom('rpm_headers')
        .selectAll()
        .where('sha256', 'in', all.slice(i, i + CHUNK))
        .execute();
      for (const r of rows)
        out.set(r.sha256, { sha256: r.header_sha256, sha1: r.header_sha1, payload: r.payload_digest });
    }
    return out;
  }
}
