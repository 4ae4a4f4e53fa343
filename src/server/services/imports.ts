import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { LenixError } from '../../core/errors.js';
import { parsePlainName, parseSha256 } from '../../core/ids.js';
import { formatNevra } from '../../core/nevra.js';
import { headerDigests, packageInfo, readRpmFileHeader } from '../../rpm/header.js';
import { checkImportSignature } from '../../rpm/tools.js';
import type { ImportRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { Attestations } from './attestations.js';
import type { ReleaseService } from './releases.js';

/** rpm package names and version fields as EL uses them (no `/`, whitespace or control characters). */
const RPM_FIELD = /^[A-Za-z0-9_+][A-Za-z0-9._+~^-]{0,254}$/;
const EVR_FIELD = /^[A-Za-z0-9._+~^]{1,128}$/;

/**
 * Importing packages Lenix did not build (bootstrap and upstream RPMs, like `koji import`): each upload is
 * written to a private temporary file, must be an RPM whose digests verify, and must be signed by the key the
 * importer names (one the server knows) — or carry no signature at all when the importer allows that, which is
 * recorded. Only then are its bytes stored and the import recorded, with an `import` statement in the ledger;
 * a refused file leaves nothing behind. Imported binary packages are released into their repository, whose
 * .repo file then lists the key they are signed with.
 */
export class ImportService {
  constructor(
    private readonly deps: DepsOf<'blobs' | 'clock' | 'config' | 'releases', 'imports' | 'headers'>,
    private readonly releases: Pick<ReleaseService, 'requireKey' | 'requireRepo' | 'changeKeys' | 'publisher'>,
    private readonly attest: Pick<Attestations, 'imported'>,
  ) {}

  async import(
    body: Readable,
    q: { name: string; repo: string; key?: string | undefined; allowUnsigned: boolean; by: string },
  ): Promise<ImportRecord> {
    const fileName = parsePlainName(q.name, 'package name');
    if (!fileName.endsWith('.rpm')) throw new LenixError('BAD_REQUEST', `${fileName} is not an .rpm file`);
    const repo = await this.releases.requireRepo(q.repo);
    const key = q.key ? await this.releases.requireKey(q.key) : null;
    if (!key && !q.allowUnsigned)
      throw new LenixError('IMPORT_REFUSED', 'give the key the package is signed with (--key), or --allow-unsigned');
    const tmpRoot = path.join(this.deps.config.dataDir, 'tmp');
    await mkdir(tmpRoot, { recursive: true });
    const dir = await mkdtemp(path.join(tmpRoot, 'import-'));
    try {
      const file = path.join(dir, 'package.rpm');
      const hash = createHash('sha256');
      let size = 0;
      const limit = this.deps.config.maxUploadBytes;
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            size += chunk.length;
            if (size > limit) return done(new LenixError('BODY_TOO_LARGE', `an import is limited to ${limit} bytes`));
            hash.update(chunk);
            done(null, chunk);
          },
        }),
        createWriteStream(file, { mode: 0o600 }),
      );
      const header = await readRpmFileHeader(file);
      const info = packageInfo(header);
      const digests = headerDigests(header);
      const nevra = formatNevra({ ...info, arch: info.isSource ? 'src' : info.arch });
      // The header names the file Lenix stores and publishes: it must be a plain, rpm-shaped name.
      if (!RPM_FIELD.test(info.name) || ![info.version, info.release, info.arch].every((f) => EVR_FIELD.test(f)))
        throw new LenixError('IMPORT_REFUSED', `${fileName}: its header's name, version, release or arch is not plain`);
      parsePlainName(`${nevra}.rpm`, 'package name');
      const check = await checkImportSignature(file, key?.publicKey ?? null);
      if (check.kind === 'refused') throw new LenixError('IMPORT_REFUSED', `${fileName}: ${check.why}`);
      if (key && check.kind !== 'signed') throw new LenixError('IMPORT_REFUSED', `${fileName}: not signed`);
      const sha256 = hash.digest('hex');
      const stored = await this.deps.blobs.put(createReadStream(file), { expected: parseSha256(sha256) });
      await this.deps.store.headers.put([{ sha256: stored.sha256, digests }]);
      const record = await this.deps.store.imports.add(
        {
          sha256: stored.sha256,
          name: `${nevra}.rpm`,
          nevra,
          arch: info.isSource ? 'src' : info.arch,
          kind: info.isSource ? 'srpm' : 'rpm',
          size,
          keyFingerprint: key?.fingerprint ?? null,
          repo: repo.name,
          importedBy: q.by,
        },
        this.deps.clock.now(),
      );
      await this.attest.imported(record);
      if (record.kind === 'rpm') await this.releases.publisher.recordMetadata([record]); // derived once, now
      // Clients of the repository check imported packages against the key they are signed with.
      if (key && !repo.keys.some((k) => k.fingerprint === key.fingerprint && k.retiredAt === null))
        await this.releases.changeKeys(repo.name, { add: key.fingerprint });
      return record;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async require(id: number): Promise<ImportRecord> {
    const i = await this.deps.store.imports.get(id);
    if (!i) throw new LenixError('NOT_FOUND', `no import ${id}`);
    return i;
  }

  list(limit: number): Promise<ImportRecord[]> {
    return this.deps.store.imports.list(limit);
  }
}
