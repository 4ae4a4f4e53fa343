import { randomBytes } from 'node:crypto';
import { signedBy } from '../../core/push-signature.js';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { BuildRecord, SourceRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { BuildService } from './builds.js';
import type { SourceService } from './sources.js';

/** The part of a push event Lenix reads (GitHub, Gitea/Forgejo, GitLab and `lenix hook post-receive` agree). */
const PushEvent = z.object({ ref: z.string().max(1024) });

/**
 * Push instead of polling: a forge's webhook (or the git post-receive helper) tells Lenix a source changed,
 * and Lenix fetches the source itself and builds each new commit on its branch, as the watcher does. Nothing
 * in the event is trusted beyond "look now": commits come from the fetch, never from the payload, so the
 * secret guards against being made to fetch, not against forged code.
 */
export class PushService {
  /** One fetch-and-build per source at a time, so two pushes never build a commit twice. */
  private readonly running = new Map<number, Promise<unknown>>();

  constructor(
    private readonly deps: DepsOf<'clock' | 'log', 'sources' | 'targets'>,
    private readonly sources: Pick<SourceService, 'require' | 'mirror'>,
    private readonly builds: Pick<BuildService, 'createFor'>,
  ) {}

  /** A new webhook secret for a source (the old one stops working); shown once. */
  async newSecret(name: string): Promise<{ source: SourceRecord; secret: string }> {
    const source = await this.sources.require(name);
    const secret = randomBytes(32).toString('base64url');
    await this.deps.store.sources.setHookSecret(source.id, secret);
    return { source, secret };
  }

  /**
   * A push event for a source: its signature checked against the source's secret (`X-Hub-Signature-256` as
   * GitHub, Gitea and Forgejo send it, or GitLab's `X-Gitlab-Token`), then, for a push to the source's branch,
   * its new commits built. Returns the builds started (none for another branch).
   */
  async hook(name: string, headers: Record<string, unknown>, body: Buffer): Promise<BuildRecord[]> {
    const source = await this.sources.require(name);
    const secret = await this.deps.store.sources.hookSecret(source.id);
    if (!secret) throw new LenixError('HOOK_NOT_CONFIGURED', `source ${source.name} has no webhook secret`);
    if (!signedBy(secret, headers, body))
      throw new LenixError('HOOK_SIGNATURE_INVALID', 'the push event is not signed with this source’s secret');
    let ref: string;
    try {
      ref = PushEvent.parse(JSON.parse(body.toString('utf8'))).ref;
    } catch (err) {
      throw new LenixError('BAD_REQUEST', 'a push event is a JSON object with a ref', { cause: err });
    }
    if (ref !== `refs/heads/${source.branch}`) return [];
    return this.buildNew(source);
  }

  /**
   * Fetch a source and build each commit on its branch after the last one seen, oldest first, for the source's
   * target. A commit that cannot be built is still marked seen (its reason logged), so it blocks nothing after it.
   */
  buildNew(source: SourceRecord): Promise<BuildRecord[]> {
    const before = this.running.get(source.id) ?? Promise.resolve();
    const next = before.catch(() => undefined).then(() => this.fetchAndBuild(source.id));
    this.running.set(source.id, next);
    void next.finally(() => {
      if (this.running.get(source.id) === next) this.running.delete(source.id);
    });
    return next;
  }

  private async fetchAndBuild(id: number): Promise<BuildRecord[]> {
    const source = (await this.deps.store.sources.get(id))!;
    const mirror = await this.sources.mirror(source);
    await mirror.fetch();
    const commits = await mirror.newCommits(`refs/heads/${source.branch}`, source.lastSeenCommit);
    const target = source.targetId === null ? undefined : (await this.deps.store.targets.get(source.targetId))?.name;
    const built: BuildRecord[] = [];
    for (const sha of commits) {
      try {
        const { build } = await this.builds.createFor(source, {
          ref: sha,
          createdBy: `push:${source.name}`,
          ...(target ? { target } : {}),
        });
        built.push(build);
      } catch (err) {
        this.deps.log.warn(
          { component: 'intake', source: source.name, commit: sha, err: (err as Error).message },
          'pushed commit not built',
        );
      }
      await this.deps.store.sources.markFetched(source.id, this.deps.clock.now(), sha);
    }
    return built;
  }
}
