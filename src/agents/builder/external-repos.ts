import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ApiClient } from '../../client/http.js';
import { parsePlainName } from '../../core/ids.js';
import type { BuildTargetPayload } from '../../core/protocol.js';
import { packageInfo, readRpmFileHeader } from '../../rpm/header.js';
import { SANDBOX_WORK } from '../../rpm/sandbox.js';
import { createrepo } from '../../rpm/tools.js';
import { sha256File } from '../../store/durable.js';
import { ROOT_DNF_CONF } from '../kit/root-script.js';
import { nevraOf, sourceName, type Origin } from './origins.js';

const run = promisify(execFile);

/** The SHA-256 of a repository's repomd.xml, or null when it cannot be fetched. */
export async function repomdDigest(url: string): Promise<string | null> {
  try {
    const r = await fetch(`${url}repodata/repomd.xml`, { signal: AbortSignal.timeout(30_000) });
    if (!r.ok) return null;
    return createHash('sha256')
      .update(Buffer.from(await r.arrayBuffer()))
      .digest('hex');
  } catch {
    return null;
  }
}

/**
 * The packages a buildroot needs from repositories outside Lenix, fetched on the node (the sandbox has no
 * network), as mock does: dnf resolves the BuildRequires against the target's repositories (local copies) and
 * the external ones (repo_gpgcheck=1, gpgcheck=1 against each one's key) and downloads only what it would
 * install; each external repository's share becomes one more local repository of the sandbox, checked again by
 * the sandbox's dnf with the same key. Returns its .repo sections.
 */
export async function downloadExternal(
  o: {
    api: ApiClient;
    workRoot: string;
    input: string;
    target: BuildTargetPayload;
    hostBase: string;
    buildRequires: readonly string[];
    say: (line: string) => void;
  },
  cache: string,
  origins: Map<string, Origin>,
): Promise<string[]> {
  const external = o.target.external ?? [];
  const scratch = await mkdtemp(path.join(o.workRoot, 'external-'));
  try {
    const lines: string[] = [];
    for (const [i, repo] of o.target.repos.entries()) {
      const dir = path.join(scratch, `lenix-${i}`);
      await mkdir(dir, { recursive: true });
      for (const p of repo.packages)
        await link(path.join(cache, p.sha256), path.join(dir, parsePlainName(p.name))).catch(() =>
          copyFile(path.join(cache, p.sha256), path.join(dir, parsePlainName(p.name))),
        );
      await createrepo(dir);
      lines.push(`[lenix-${i}]`, `name=${repo.name}`, `baseurl=file://${dir}`, 'gpgcheck=0', '');
    }
    lines.push('[lenix-host-base]', 'name=host base', `baseurl=file://${o.hostBase}`, 'gpgcheck=0', '');
    for (const [j, e] of external.entries()) {
      await o.api.download(e.keyUrl, path.join(scratch, `ext-${j}.asc`));
      lines.push(
        `[ext-${j}]`,
        `name=${e.url}`,
        `baseurl=${e.url}`,
        'gpgcheck=1',
        'repo_gpgcheck=1',
        `gpgkey=file://${path.join(scratch, `ext-${j}.asc`)}`,
        '',
      );
    }
    await mkdir(path.join(scratch, 'repos.d'));
    await mkdir(path.join(scratch, 'home'));
    await writeFile(path.join(scratch, 'repos.d', 'resolve.repo'), lines.join('\n'));
    await writeFile(path.join(scratch, 'dnf.conf'), ROOT_DNF_CONF);
    await writeFile(path.join(scratch, 'home', '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
    await run(
      'dnf',
      [
        '-y',
        `--config=${path.join(scratch, 'dnf.conf')}`,
        `--installroot=${path.join(scratch, 'root')}`,
        '--releasever=9',
        `--setopt=reposdir=${path.join(scratch, 'repos.d')}`,
        `--setopt=cachedir=${path.join(scratch, 'cache')}`,
        '--setopt=keepcache=1',
        '--setopt=install_weak_deps=0',
        '--disableplugin=*',
        'install',
        '--downloadonly',
        'lenix-host-base',
        ...o.buildRequires,
      ],
      { env: { ...process.env, HOME: path.join(scratch, 'home') }, maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 },
    ).catch((e: { stdout?: string; stderr?: string }) =>
      // The sandbox's dnf names what is missing; here only say why nothing came from outside.
      o.say(`external repositories: dnf resolved nothing (${`${e.stderr ?? ''}`.trim().split('\n').pop() ?? ''})`),
    );
    const sections: string[] = [];
    const cacheDirs = existsSync(path.join(scratch, 'cache')) ? await readdir(path.join(scratch, 'cache')) : [];
    for (const [j, e] of external.entries()) {
      // dnf keeps each repository's packages under CACHEDIR/<repository id>-<hash>/packages/.
      const dir = `repos/ext-${j}`;
      await mkdir(path.join(o.input, dir), { recursive: true });
      let n = 0;
      for (const d of cacheDirs.filter((c) => c.startsWith(`ext-${j}-`))) {
        const pkgs = path.join(scratch, 'cache', d, 'packages');
        for (const f of existsSync(pkgs) ? await readdir(pkgs) : []) {
          if (!f.endsWith('.rpm')) continue;
          const sha256 = await sha256File(path.join(pkgs, f));
          if (!existsSync(path.join(cache, sha256))) await copyFile(path.join(pkgs, f), path.join(cache, sha256));
          await copyFile(path.join(pkgs, f), path.join(o.input, dir, parsePlainName(f)));
          const info = packageInfo(await readRpmFileHeader(path.join(cache, sha256)));
          origins.set(sha256, {
            sha256,
            nevra: nevraOf(info),
            repo: e.url,
            snapshotId: null,
            source: sourceName(info.sourceRpm),
          });
          n++;
        }
      }
      await copyFile(path.join(scratch, `ext-${j}.asc`), path.join(o.input, `ext-key-${j}.asc`));
      sections.push(
        `[ext-${j}]`,
        `name=${e.url}`,
        `baseurl=file://${SANDBOX_WORK}/in/${dir}`,
        'gpgcheck=1',
        'repo_gpgcheck=0',
        `gpgkey=file://${SANDBOX_WORK}/in/ext-key-${j}.asc`,
        '',
      );
      o.say(`external repository ${e.url}: ${n} packages for this buildroot`);
    }
    return sections;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
