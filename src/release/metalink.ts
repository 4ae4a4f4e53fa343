import { createHash } from 'node:crypto';
import { create } from 'xmlbuilder2';

/**
 * Metalinks as MirrorManager serves them and librepo reads them (../shared/research/feasibility.md §4): for a
 * repository arch, the size, timestamp and md5/sha1/sha256/sha512 of the current repomd.xml, the same for the
 * older ones still allowed (`mm0:alternates`), and the mirrors' URLs of repodata/repomd.xml with a preference.
 * dnf takes any of those hashes as the acceptable repomd.xml and skips a mirror serving something else.
 */

/** What a metalink says of one repomd.xml. */
export interface RepomdFacts {
  readonly size: number;
  /** The newest `<timestamp>` of its data entries (what MirrorManager's umdl records). */
  readonly timestamp: number;
  readonly hashes: Readonly<Record<'md5' | 'sha1' | 'sha256' | 'sha512', string>>;
}

export function repomdFacts(bytes: Buffer): RepomdFacts {
  const stamps = [...bytes.toString('utf8').matchAll(/<timestamp>(\d+)<\/timestamp>/g)].map((m) => Number(m[1]));
  const hash = (a: string) => createHash(a).update(bytes).digest('hex');
  return {
    size: bytes.length,
    timestamp: stamps.length > 0 ? Math.max(...stamps) : 0,
    hashes: { md5: hash('md5'), sha1: hash('sha1'), sha256: hash('sha256'), sha512: hash('sha512') },
  };
}

export interface MetalinkUrl {
  /** The URL of repodata/repomd.xml on that mirror. */
  readonly url: string;
  readonly preference: number;
  readonly location: string | null;
}

export function renderMetalink(o: {
  readonly current: RepomdFacts;
  readonly alternates: readonly RepomdFacts[];
  readonly urls: readonly MetalinkUrl[];
  readonly pubdate: Date;
}): string {
  const root = create({ version: '1.0', encoding: 'utf-8' }).ele('metalink', {
    version: '3.0',
    xmlns: 'http://www.metalinker.org/',
    type: 'dynamic',
    pubdate: o.pubdate.toUTCString(),
    generator: 'lenix',
    'xmlns:mm0': 'http://fedorahosted.org/mirrormanager',
  });
  const file = root.ele('files').ele('file', { name: 'repomd.xml' });
  const facts = (el: ReturnType<typeof root.ele>, f: RepomdFacts) => {
    el.ele('mm0:timestamp').txt(String(f.timestamp));
    el.ele('size').txt(String(f.size));
    const v = el.ele('verification');
    for (const [type, value] of Object.entries(f.hashes)) v.ele('hash', { type }).txt(value);
  };
  facts(file, o.current);
  if (o.alternates.length > 0) {
    const alts = file.ele('mm0:alternates');
    for (const a of o.alternates) facts(alts.ele('mm0:alternate'), a);
  }
  const res = file.ele('resources', { maxconnections: '1' });
  for (const u of o.urls) {
    const protocol = new URL(u.url).protocol.replace(/:$/, '');
    res
      .ele('url', {
        protocol,
        type: protocol,
        ...(u.location ? { location: u.location } : {}),
        preference: String(u.preference),
      })
      .txt(u.url);
  }
  return `${root.end({ prettyPrint: true })}\n`;
}
