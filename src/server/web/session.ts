import { createHash } from 'node:crypto';
import { parse as parseCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LenixError } from '../../core/errors.js';
import type { ReleaseStore } from '../../store/release-store.js';
import type { AgentStore } from '../../store/agent-store.js';
import type { LogStore } from '../../store/log-store.js';
import type { SourceStore } from '../../store/source-store.js';
import type { ArtifactStore, BuildStore, TaskQueue } from '../../store/store.js';
import { toLenixError } from '../http-errors.js';
import type { Services } from '../types.js';
import { hasScope, type Caller } from '../auth.js';
import type { ServerDeps } from '../context.js';
import { html, type Html } from './html.js';
import { page, type Viewer } from './layout.js';

/**
 * The session side of the web pages: the token cookie, form tokens derived from it, the viewer, and the
 * helpers every page uses (a page or its JSON redirect, error pages, a guard that turns errors into pages).
 */

/** What the pages read of the build spine: nothing that writes. */
export interface WebReads {
  readonly sources: Pick<SourceStore, 'get' | 'getByName' | 'list' | 'listCommits'>;
  readonly builds: Pick<BuildStore, 'get' | 'list'>;
  readonly tasks: Pick<TaskQueue, 'get' | 'listOfBuild'>;
  readonly agents: Pick<AgentStore, 'list'>;
  readonly artifacts: Pick<ArtifactStore, 'listOfBuild'>;
  readonly logs: Pick<LogStore, 'read'>;
}

export type ReleaseReads = Pick<
  ReleaseStore,
  'getRepo' | 'listReleases' | 'listRepos' | 'listSnapshots' | 'releasesOfBuild'
>;

export const COOKIE = 'lenix_token';

/** The form token of a session: a derivation of its cookie, so a form from another site cannot carry it. */

const csrfOf = (token: string) => createHash('sha256').update(`lenix-csrf:${token}`).digest('hex').slice(0, 32);

export { Id as IdParam } from '../api/params.js';

/**
 * What every page module is given: the read-only query layer, the viewer from the session cookie, and the
 * page, error-page and form-token helpers. Actions go through the services, never through the stores.
 */
export function createWebKit(deps: ServerDeps, s: Services) {
  // The read-only query layer pages use: the types admit no writing method. Actions go through services.
  const store: WebReads = deps.store;

  const releases: ReleaseReads = deps.releases;

  const viewerOf = async (req: FastifyRequest): Promise<{ viewer: Viewer; caller: Caller | null }> => {
    const token = parseCookie(req.headers.cookie ?? '')[COOKIE];
    if (!token) return { viewer: { name: null, maintainer: false, admin: false, csrf: null }, caller: null };
    const caller = await s.auth.authenticate(`Bearer ${token}`, deps.clock.now()).catch(() => null);
    if (!caller) return { viewer: { name: null, maintainer: false, admin: false, csrf: null }, caller: null };
    return {
      viewer: {
        name: caller.name,
        maintainer: hasScope(caller, 'maintainer'),
        admin: hasScope(caller, 'admin'),
        csrf: csrfOf(token),
      },
      caller,
    };
  };

  /** A page, or (for clients asking for JSON) a redirect to the API it is built on. */
  const send = async (
    req: FastifyRequest,
    reply: FastifyReply,
    o: {
      title: string;
      json?: string;
      body: (v: Viewer) => Html | Promise<Html>;
      scripts?: ('log.js' | 'dash.js')[];
      status?: number;
    },
  ) => {
    const accept = req.headers.accept ?? '';
    if (o.json && accept.includes('application/json') && !accept.includes('text/html'))
      return reply.redirect(o.json, 303);
    const { viewer } = await viewerOf(req);
    const body = await o.body(viewer);
    return reply
      .status(o.status ?? 200)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
      )
      .header('x-content-type-options', 'nosniff')
      .send(
        page({
          title: o.title,
          viewer,
          path: req.url.split('?')[0]!,
          body,
          ...(o.json ? { json: o.json } : {}),
          ...(o.scripts ? { scripts: o.scripts } : {}),
        }),
      );
  };

  // Errors on web pages are pages too (with the same codes the API uses).
  const fail = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    const e = toLenixError(err);
    return send(req, reply, {
      title:
        e.status === 404
          ? 'Not found'
          : e.status === 401
            ? 'Sign in needed'
            : e.status === 403
              ? 'Not allowed'
              : 'Error',
      status: e.status,
      body: () =>
        html`<p><strong>${e.code}</strong>: ${e.message}</p>${e.status === 401 ? html`<p><a href="/login">Sign in</a> with a maintainer token.</p>` : ''}`,
    });
  };

  const guard =
    <Q extends FastifyRequest>(handler: (req: Q, reply: FastifyReply) => Promise<unknown>) =>
    async (req: Q, reply: FastifyReply) => {
      try {
        return await handler(req, reply);
      } catch (err) {
        return fail(req, reply, err);
      }
    };

  /** A state-changing form: a signed-in maintainer (or any signed-in user for sign-out) with its form token. */
  const requireForm = async (req: FastifyRequest, maintainer = true): Promise<Caller> => {
    const { viewer, caller } = await viewerOf(req);
    if (!caller) throw new LenixError('UNAUTHENTICATED', 'sign in first');
    const csrf = (req.body as { csrf?: unknown } | undefined)?.csrf;
    if (typeof csrf !== 'string' || csrf !== viewer.csrf)
      throw new LenixError('FORBIDDEN', 'the form token is missing or stale; reload the page');
    if (maintainer && !viewer.maintainer) throw new LenixError('FORBIDDEN', 'this needs the maintainer scope');
    return caller;
  };
  return { deps, s, store, releases, viewerOf, send, fail, guard, requireForm };
}

export type WebKit = ReturnType<typeof createWebKit>;
