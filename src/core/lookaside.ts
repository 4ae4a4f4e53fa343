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

/**
 * Where rpmbuild reads a spec's sources (`_sourcedir`), relative to the repository root: `SOURCES` for a spec in
 * `SPECS/` (CentOS dist-git), the root itself for a spec there (Fedora dist-git, upstream trees).
 */
export function sourceDirOf(specPath: string): string {
  const dir = specPath.includes('/') ? specPath.slice(0, specPath.lastIndexOf('/')) : '';
  return dir === 'SPECS' ? 'SOURCES' : dir;
}

/** The `.NAME.metadata` path of a lookaside file for a spec at `specPath`: where rpmbuild will read it. */
export function lookasidePathFor(specPath: string, name: string): string {
  const dir = sourceDirOf(specPath);
  return dir === '' ? name : `${dir}/${name}`;
}

/** Refuse a lookaside path rpmbuild would not read for this spec (a file Source tags could not name). */
export function checkLookasidePath(meta: string, e: LookasideEntry, specPath: string): void {
  const name = e.path.slice(e.path.lastIndexOf('/') + 1);
  const want = lookasidePathFor(specPath, name);
  if (e.path !== want)
    throw new LenixError(
      'LOOKASIDE_INVALID',
      `${meta} puts ${e.path} where rpmbuild will not read it: the sources of ${specPath} are in ${sourceDirOf(specPath) || 'the repository root'} (write ${want})`,
    );
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
