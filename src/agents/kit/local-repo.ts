import { existsSync } from 'node:fs';
import { copyFile, link, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../../client/http.js';
import { parsePlainName } from '../../core/ids.js';
import type { RootRepo } from '../../core/protocol.js';
import { SANDBOX_WORK } from '../../rpm/sandbox.js';

/** A package of the node's or tester's digest cache: downloaded once (verified by digest), then reused. */
export async function cachedPackage(
  api: ApiClient,
  cache: string,
  p: { url: string; sha256: string },
): Promise<string> {
  const file = path.join(cache, p.sha256);
  if (!existsSync(file)) await api.download(p.url, file, p.sha256);
  return file;
}

/**
 * One repository snapshot laid out in a sandbox's input folder for dnf: its packages from the digest cache in
 * `in/DIR`, its keys in `in/`, and the `.repo` section that checks every package against them (gpgcheck=1).
 */
export async function placeRepo(
  o: { api: ApiClient; input: string; cache: string },
  repo: Pick<RootRepo, 'name' | 'packages' | 'keyUrls'> & { readonly snapshotId?: number | null },
  at: { readonly id: string; readonly dir: string },
): Promise<string[]> {
  const { id, dir } = at;
  await mkdir(path.join(o.input, dir), { recursive: true });
  for (const p of repo.packages) {
    const cached = await cachedPackage(o.api, o.cache, p);
    const file = path.join(o.input, dir, parsePlainName(p.name));
    await link(cached, file).catch(() => copyFile(cached, file));
  }
  const keys: string[] = [];
  for (const [k, url] of repo.keyUrls.entries()) {
    await o.api.download(url, path.join(o.input, `${id}-key-${k}.asc`));
    keys.push(`file://${SANDBOX_WORK}/in/${id}-key-${k}.asc`);
  }
  return [
    `[lenix-${id}]`,
    `name=${repo.name} snapshot ${repo.snapshotId ?? 'none'}`,
    `baseurl=file://${SANDBOX_WORK}/in/${dir}`,
    'gpgcheck=1',
    'repo_gpgcheck=0',
    `gpgkey=${keys.join(' ')}`,
    '',
  ];
}
