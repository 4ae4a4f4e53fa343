import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LENIX_VERSION } from '../../core/version.js';
import { renderAtom } from '../../errata/atom.js';
import { osvId, renderOsv } from '../../errata/osv.js';
import { renderOval } from '../../errata/oval.js';
import type { ErrataStore } from '../../store/errata-store.js';
import type { DepsOf } from '../context.js';

/**
 * The public errata exports, rewritten into DATA/errata/ after every publish: OVAL per repository, OSV per
 * advisory (repositories with a registered ecosystem), the Atom feed. A new folder is written beside the old
 * one and swapped in, so readers see the old exports or the new ones.
 */
export class ErrataExports {
  private exporting: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: DepsOf<'clock' | 'config' | 'releases'>,
    private readonly store: ErrataStore,
    private readonly dir: () => string,
  ) {}

  /** OVAL per repository, OSV per advisory (repositories with a registered ecosystem), the Atom feed. One at a time. */
  write(): Promise<void> {
    const next = this.exporting.then(() => this.rewrite());
    this.exporting = next.catch(() => undefined);
    return next;
  }

  private async rewrite(): Promise<void> {
    const dir = this.dir();
    const tmp = `${dir}.tmp-${randomUUID()}`;
    await mkdir(path.join(tmp, 'oval'), { recursive: true });
    await mkdir(path.join(tmp, 'osv'), { recursive: true });
    const released = await this.store.list({ status: 'released', limit: 100_000 });
    const page = (id: string) => `${this.deps.config.publicUrl}/api/v1/errata/${encodeURIComponent(id)}`;
    for (const repo of await this.deps.releases.listRepos()) {
      const mine = released.filter((a) => a.repoId === repo.id);
      const keys = repo.keys.filter((k) => k.retiredAt === null).map((k) => k.fingerprint);
      await writeFile(
        path.join(tmp, 'oval', `${repo.name}.xml`),
        renderOval(mine, {
          repo: repo.name,
          namespace: `dev.lenix.${repo.name.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`,
          productVersion: LENIX_VERSION,
          timestamp: this.deps.clock.now(),
          keys,
          from: this.deps.config.errataFrom,
          rights: this.deps.config.errataRights,
          selfUrl: page,
        }),
      );
      if (repo.osvEcosystem)
        for (const a of mine)
          await writeFile(path.join(tmp, 'osv', `${osvId(a.id)}.json`), renderOsv(a, repo.osvEcosystem, page(a.id)));
    }
    await writeFile(
      path.join(tmp, 'feed.atom'),
      renderAtom(released, {
        title: 'Lenix advisories',
        selfUrl: `${this.deps.config.publicUrl}/errata/feed.atom`,
        pageUrl: page,
        updated: 0,
        author: this.deps.config.errataFrom,
      }),
    );
    // Swap the folder: readers see the old exports or the new ones.
    const old = `${dir}.old-${randomUUID()}`;
    await rename(dir, old).catch(() => undefined);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  }
}
