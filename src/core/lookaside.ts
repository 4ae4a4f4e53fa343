import { LenixError } from './errors.js';

/**
 * AlmaLinux-style `.NAME.metadata`: one `<sha256> <path>` line per tarball kept outside git. Paths are
 * relative to the repository root (usually SOURCES/...) and may not climb out of it. Only SHA-256 digests
 * are accepted: a SHA-1 line is refused with a clear reason rather than trusted.
 */
export interface LookasideEntry {
  readonly sha256: string;
  readonly path: string;
}

export function parseLookasideMetadata(text: string): LookasideEntry[] {
  const out: LookasideEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]+)\s+(\S+)$/.exec(line);
    if (!m) throw new LenixError('LOOKASIDE_INVALID', `metadata line ${i + 1} is not "<sha256> <path>"`);
    const digest = m[1]!.toLowerCase();
    const file = m[2]!;
    if (digest.length !== 64) {
      throw new LenixError('LOOKASIDE_INVALID', `metadata line ${i + 1}: only SHA-256 digests (64 hex) are accepted`);
    }
    const parts = file.split('/');
    if (file.startsWith('/') || parts.some((p) => p === '..' || p === '.' || p === '') || file.length > 1024) {
      throw new LenixError(
        'LOOKASIDE_INVALID',
        `metadata line ${i + 1}: path must be relative and stay inside the repository`,
      );
    }
    out.push({ sha256: digest, path: file });
  }
  return out;
}

/** `.NAME.metadata` files at the repository root. */
export function lookasideFiles(files: readonly string[]): string[] {
  return files.filter((f) => /^\.[^/]+\.metadata$/.test(f));
}

/**
 * The first symbolic link of the source tree on a lookaside file's path (a folder on the way, or the file's
 * own name), or null. A tree with `SOURCES -> /root` must not make anything write through it.
 */
export function linkOnLookasidePath(file: string, symlinks: ReadonlySet<string>): string | null {
  const parts = file.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('/');
    if (symlinks.has(prefix)) return prefix;
  }
  return null;
}
