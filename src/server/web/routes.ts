import { createHash } from 'node:crypto';
import formbody from '@fastify/formbody';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Envelope } from '../../attest/dsse.js';
import type { ProofBundle } from '../../attest/verify-chain.js';
import { SBOM_FORMATS } from '../../attest/sbom.js';
import { LenixError } from '../../core/errors.js';
import { isLocalSourceUrl, publicSourceUrl } from '../../core/source-url.js';
import { cves, nevraOf, ADVISORY_TYPES, SEVERITIES } from '../../errata/advisory.js';
import { osvId } from '../../errata/osv.js';
import { parseCheckpoint } from '../../ledger/checkpoint.js';
import { leafHash, verifyInclusion } from '../../ledger/merkle.js';
import { parseNote } from '../../ledger/note.js';
import { BUILD_STATES, isFinished } from '../../scheduler/task-state.js';
import type { ArtifactRecord, BuildRecord, TaskRecord, TokenRecord } from '../../store/records.js';
import type { ReleaseStore } from '../../store/release-store.js';
import type { AgentStore } from '../../store/agent-store.js';
import type { LogStore } from '../../store/log-store.js';
import type { SourceStore } from '../../store/source-store.js';
import type { ArtifactStore, BuildStore, TaskQueue } from '../../store/store.js';
import { ADVISORY_ID } from '../api/params.js';
import { toLenixError } from '../http-errors.js';
import type { App, Services } from '../types.js';
import { hasScope, type Caller } from '../auth.js';
import type { ServerDeps } from '../context.js';
import { dashboard } from '../services/dashboard.js';
import { ASSETS } from './assets.js';
import { html, type Html } from './html.js';
import { page, type Viewer } from './layout.js';

/** What the pages read of the build spine: nothing that writes. */
interface WebReads {
  readonly sources: Pick<SourceStore, 'get' | 'getByName' | 'list' | 'listCommits'>;
  readonly builds: Pick<BuildStore, 'get' | 'list'>;
  readonly tasks: Pick<TaskQueue, 'get' | 'listOfBuild'>;
  readonly agents: Pick<AgentStore, 'list'>;
  readonly artifacts: Pick<ArtifactStore, 'listOfBuild'>;
  readonly logs: Pick<LogStore, 'read'>;
}
type ReleaseReads = Pick<ReleaseStore, 'getRepo' | 'listReleases' | 'listRepos' | 'listSnapshots' | 'releasesOfBuild'>;

const COOKIE = 'lenix_token';
const LOG_TAIL = 64 * 1024;
const iso = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));
const csrfOf = (token: string) => createHash('sha256').update(`lenix-csrf:${token}`).digest('hex').slice(0, 32);

function duration(from: number | null, to: number | null, now: number): string {
  if (from === null) return '';
  const s = Math.max(0, Math.round(((to ?? now) - from) / 1000));
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m ${s % 60}s`
      : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
/**
 * A proof bundle's entries, each with the "verified" mark: its inclusion proof checked against the root of
 * the bundle's signed checkpoint.
 */
function checked(bundle: ProofBundle) {
  const cp = parseCheckpoint(parseNote(bundle.checkpoint).text);
  const entries = bundle.entries.map((e) => {
    const data = new Uint8Array(Buffer.from(e.entry, 'base64'));
    const ok = verifyInclusion(
      leafHash(data),
      e.index,
      cp.size,
      e.proof.map((h) => new Uint8Array(Buffer.from(h, 'hex'))),
      cp.root,
    );
    const env = JSON.parse(Buffer.from(data).toString('utf8')) as Envelope;
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as {
      predicateType: string;
      subject: unknown[];
    };
    return { index: e.index, proof: e.proof, ok, type: st.predicateType, subjects: st.subject.length };
  });
  return { cp, entries };
}

/** A source URL as pages show it: a server-local path is private, so it is not shown. */
const repoUrl = (url: string) =>
  isLocalSourceUrl(url) || url === '' ? '(a repository local to the server)' : publicSourceUrl('', url);
const stateOf = (s: string) => html`<span class="state-${s}">${s}</span>`;
const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * The public web interface (server-rendered HTML, readable with JavaScript off). Pages only read; the few
 * actions (rebuild, cancel, approve a release or an advisory) are POST forms that need a signed-in token with
 * the maintainer scope and the form token of its session. Each page names the API URL it is built on.
 */
export async function registerWebRoutes(app: App, deps: ServerDeps, s: Services): Promise<void> {
  await app.register(formbody, { bodyLimit: 16 * 1024 });
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

  app.get<{ Params: { hash: string; name: string } }>('/static/:hash/:name', async (req, reply) => {
    const a = ASSETS[req.params.name as keyof typeof ASSETS];
    if (!a) throw new LenixError('NOT_FOUND', 'no such file');
    return reply
      .type(a.type)
      .header('cache-control', a.hash === req.params.hash ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(a.body);
  });

  // ── dashboard ────────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/',
    guard(async (req, reply) =>
      send(req, reply, {
        title: 'Dashboard',
        json: '/api/v1/dashboard',
        scripts: ['dash.js'],
        body: async () => {
          const d = await dashboard(deps, s.errata);
          return html`
<div class="cards">
<section class="card" aria-labelledby="q"><h2 id="q">Queue</h2><div id="queue" data-live>${Object.keys(d.queue).length === 0 ? html`<p class="muted">Nothing waiting.</p>` : html`<table><thead><tr><th scope="col">Architecture</th><th scope="col">Queued tasks</th></tr></thead><tbody>${Object.entries(d.queue).map(([arch, n]) => html`<tr><td>${arch}</td><td>${n}</td></tr>`)}</tbody></table>`}</div></section>
<section class="card" aria-labelledby="ag"><h2 id="ag">Agents online</h2><div id="agents" data-live>${d.agentsOnline.length === 0 ? html`<p class="muted">None.</p>` : html`<ul>${d.agentsOnline.map(({ agent: a, task: t }) => html`<li><strong>${a.name}</strong> <span class="muted">${a.role}, ${a.arches.join(', ')}</span>${t ? html` — task <a href="/builds/${t.buildId}/tasks/${t.id}/log">${t.id}</a>` : html` <span class="muted">idle</span>`}</li>`)}</ul>`}</div></section>
</div>
<section aria-labelledby="run"><h2 id="run">Running now</h2><div id="running" data-live>${d.running.length === 0 ? html`<p class="muted">No task is running.</p>` : html`<table><thead><tr><th scope="col">Task</th><th scope="col">Build</th><th scope="col">Kind</th><th scope="col">Node</th><th scope="col">Elapsed</th></tr></thead><tbody>${d.running.map(({ task: t, build: b, agent }) => html`<tr><td><a href="/builds/${t.buildId}/tasks/${t.id}/log">${t.id}</a></td><td><a href="/builds/${t.buildId}">${t.buildId}</a> ${b ? `${b.packageName}-${b.packageEvr}` : ''}</td><td>${t.kind === 'binary' ? `build ${t.arch}` : t.kind}</td><td>${agent ?? ''}</td><td>${duration(t.startedAt, null, d.now)}</td></tr>`)}</tbody></table>`}</div></section>
<section aria-labelledby="lb"><h2 id="lb">Latest builds</h2><div id="latest" data-live>${buildTable(d.builds, d.now)}</div><p><a href="/builds">All builds</a></p></section>
<div class="cards">
<section class="card" aria-labelledby="lr"><h2 id="lr">Latest releases</h2>${d.releases.length === 0 ? html`<p class="muted">None yet.</p>` : html`<ul>${d.releases.map((r) => html`<li>release ${r.id}: ${stateOf(r.state)} <span class="muted">builds ${r.builds.join(', ')}</span></li>`)}</ul>`}</section>
<section class="card" aria-labelledby="la"><h2 id="la">Latest advisories</h2>${d.advisories.length === 0 ? html`<p class="muted">None yet.</p>` : html`<ul>${d.advisories.map((a) => html`<li><a href="/errata/${a.id}">${a.id}</a> ${a.severity ?? a.type}: ${a.title}</li>`)}</ul>`}</section>
</div>`;
        },
      }),
    ),
  );

  const buildTable = (builds: readonly BuildRecord[], now: number) =>
    builds.length === 0
      ? html`<p class="muted">No builds.</p>`
      : html`<table><thead><tr><th scope="col">Build</th><th scope="col">Package</th><th scope="col">Source</th><th scope="col">State</th><th scope="col">Arches</th><th scope="col">Started by</th><th scope="col">Created</th><th scope="col">Took</th></tr></thead><tbody>${builds.map(
          (b) =>
            html`<tr><td><a href="/builds/${b.id}">${b.id}</a></td><td>${b.packageName}-${b.packageEvr}</td><td><a href="/sources/${b.sourceName}">${b.sourceName}</a></td><td>${stateOf(b.state)}</td><td>${b.arches.join(', ')}</td><td>${b.createdBy}</td><td>${iso(b.createdAt)}</td><td>${duration(b.startedAt, b.finishedAt, now)}</td></tr>`,
        )}</tbody></table>`;

  // ── builds ───────────────────────────────────────────────────────────────────────────────────────
  const BuildsQuery = z.object({
    source: z
      .string()
      .max(100)
      .optional()
      .transform((v) => v || undefined),
    state: z
      .enum(['', ...BUILD_STATES] as [string, ...string[]])
      .optional()
      .transform((v) => v || undefined),
    arch: z
      .string()
      .max(32)
      .optional()
      .transform((v) => v || undefined),
    by: z
      .string()
      .max(200)
      .optional()
      .transform((v) => v || undefined),
    q: z
      .string()
      .max(200)
      .optional()
      .transform((v) => v || undefined),
    before: z.coerce.number().int().positive().optional(),
  });
  app.get(
    '/builds',
    guard(async (req, reply) => {
      const q = BuildsQuery.parse(req.query);
      const source = q.source ? await store.sources.getByName(q.source) : null;
      if (q.source && !source) throw new LenixError('SOURCE_NOT_FOUND', `no source ${q.source}`);
      const limit = 50;
      const builds = await store.builds.list({
        sourceId: source?.id,
        state: q.state as never,
        beforeId: q.before,
        createdBy: q.by,
        arch: q.arch,
        text: q.q,
        limit,
      });
      const sources = await store.sources.list();
      const keep = new URLSearchParams(
        Object.entries({ source: q.source, state: q.state, arch: q.arch, by: q.by, q: q.q }).filter(
          (x): x is [string, string] => !!x[1],
        ),
      );
      const older =
        builds.length === limit
          ? `/builds?${new URLSearchParams([...keep, ['before', String(builds[builds.length - 1]!.id)]])}`
          : null;
      return send(req, reply, {
        title: 'Builds',
        json: `/api/v1/builds?${new URLSearchParams(Object.entries({ source: q.source, state: q.state, before: q.before ? String(q.before) : undefined }).filter((x): x is [string, string] => !!x[1]))}`,
        body: () => html`
<form class="filters" method="get" action="/builds" role="search" aria-label="Filter builds">
<label for="f-q">Package (NEVRA text)<input id="f-q" name="q" value="${q.q ?? ''}"></label>
<label for="f-source">Source<select id="f-source" name="source"><option value="">any</option>${sources.map((x) => html`<option${x.name === q.source ? html` selected` : ''}>${x.name}</option>`)}</select></label>
<label for="f-state">State<select id="f-state" name="state"><option value="">any</option>${BUILD_STATES.map((x) => html`<option${x === q.state ? html` selected` : ''}>${x}</option>`)}</select></label>
<label for="f-arch">Architecture<input id="f-arch" name="arch" value="${q.arch ?? ''}" size="8"></label>
<label for="f-by">Started by<input id="f-by" name="by" value="${q.by ?? ''}" size="12"></label>
<button type="submit">Filter</button>
</form>
${buildTable(builds, deps.clock.now())}
<nav class="pager" aria-label="Pages">${q.before ? html`<a href="/builds?${keep}">Newest</a>` : ''}${older ? html`<a href="${older}" rel="next">Older builds</a>` : ''}</nav>`,
      });
    }),
  );

  const IdParam = z.object({
    id: z.coerce
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1),
  });
  app.get(
    '/builds/:id',
    guard(async (req, reply) => {
      const { id } = IdParam.parse(req.params);
      const build = await store.builds.get(id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${id} does not exist`);
      const [tasks, artifacts, agents, rels, bundle] = await Promise.all([
        store.tasks.listOfBuild(id),
        store.artifacts.listOfBuild(id),
        store.agents.list(),
        releases.releasesOfBuild(id),
        s.ledger.bundle([`build:${id}`]),
      ]);
      const agentName = new Map(agents.map((a) => [a.id, a.name]));
      const now = deps.clock.now();
      const source = await store.sources.get(build.sourceId);
      const repos = new Map((await releases.listRepos()).map((r) => [r.id, r.name]));
      const { cp, entries: statements } = checked(bundle);
      const tests = tasks.filter((t) => t.kind === 'test');
      return send(req, reply, {
        title: `Build ${build.id}: ${build.packageName}-${build.packageEvr}`,
        json: `/api/v1/builds/${id}`,
        body: (v) => html`
<p>${stateOf(build.state)}${build.reason ? html` — <strong>${build.reasonCode}</strong>: ${build.reason}` : ''}</p>
<table><tbody>
<tr><th scope="row">Source</th><td><a href="/sources/${build.sourceName}">${build.sourceName}</a> @ ${build.ref} <span class="muted">${repoUrl(source?.url ?? '')}</span></td></tr>
<tr><th scope="row">Commit</th><td class="mono">${build.commit.sha} <span class="muted">tree ${build.commit.tree}</span></td></tr>
<tr><th scope="row">Started by</th><td>${build.createdBy}, ${iso(build.createdAt)}</td></tr>
<tr><th scope="row">Took</th><td>${duration(build.startedAt, build.finishedAt, now)}</td></tr>
<tr><th scope="row">Target repository</th><td>${build.targetRepo ?? html`<span class="muted">none</span>`}</td></tr>
</tbody></table>
${v.maintainer ? html`<p><form class="inline" method="post" action="/builds/${id}/rebuild"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Rebuild</button></form> ${isFinished(build.state as never) ? '' : html`<form class="inline" method="post" action="/builds/${id}/cancel"><input type="hidden" name="csrf" value="${v.csrf}"><button class="secondary" type="submit">Cancel</button></form>`}</p>` : ''}
<h2>Tasks</h2>
<table><thead><tr><th scope="col">Task</th><th scope="col">Stage</th><th scope="col">State</th><th scope="col">Node</th><th scope="col">Attempts</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Log</th></tr></thead><tbody>
${tasks.map((t) => html`<tr><td>${t.id}</td><td>${t.kind === 'binary' ? `build ${t.arch}` : t.kind}</td><td>${stateOf(t.state)}${t.reason ? html`<br><span class="muted">${t.reasonCode}: ${t.reason}</span>` : ''}</td><td>${t.agentId === null ? '' : (agentName.get(t.agentId) ?? t.agentId)}</td><td>${t.attempts}/${t.maxAttempts}</td><td>${iso(t.startedAt)}</td><td>${duration(t.startedAt, t.finishedAt, now)}</td><td><a href="/builds/${id}/tasks/${t.id}/log">log</a> <span class="muted">${bytes(t.logSize)}</span></td></tr>`)}
</tbody></table>
<h2>Artifacts</h2>
${artifactTable(artifacts)}
<h2>Test results</h2>
${tests.length === 0 ? html`<p class="muted">Not tested.</p>` : tests.map((t) => testResults(t))}
<h2>Releases</h2>
${rels.length === 0 ? html`<p class="muted">Not released.</p>` : html`<ul>${rels.map((r) => html`<li>release ${r.id} into <a href="/repositories/${repos.get(r.repoId) ?? ''}">${repos.get(r.repoId) ?? r.repoId}</a>: ${stateOf(r.state)}${r.snapshotId ? ` (snapshot ${r.snapshotId})` : ''}${r.overrideReason ? html` <span class="muted">override: ${r.overrideReason}</span>` : ''}</li>`)}</ul>`}
<h2>SBOM</h2>
<ul>${SBOM_FORMATS.map((f) => html`<li><a href="/api/v1/builds/${id}/sbom?format=${f}" download>${f}</a></li>`)}</ul>
<h2>Ledger statements</h2>
<p class="muted">Checked against checkpoint of tree size ${cp.size}: each inclusion proof leads to its signed root.</p>
${statements.length === 0 ? html`<p class="muted">None yet.</p>` : html`<table><thead><tr><th scope="col">Entry</th><th scope="col">Statement</th><th scope="col">Subjects</th><th scope="col">Verified</th></tr></thead><tbody>${statements.map((x) => html`<tr><td><a href="/ledger?entry=${x.index}&amp;build=${id}">${x.index}</a></td><td class="mono">${x.type}</td><td>${x.subjects}</td><td>${x.ok ? html`<span class="ok">✓ verified</span>` : html`<span class="bad">✗ proof fails</span>`}</td></tr>`)}</tbody></table>`}`,
      });
    }),
  );

  const artifactTable = (artifacts: readonly ArtifactRecord[]) =>
    artifacts.length === 0
      ? html`<p class="muted">None yet.</p>`
      : html`<table><thead><tr><th scope="col">File</th><th scope="col">Kind</th><th scope="col">SHA-256</th><th scope="col">Size</th><th scope="col">Signed by</th></tr></thead><tbody>${artifacts.map(
          (a) =>
            html`<tr><td><a href="/api/v1/artifacts/${a.sha256}">${a.name}</a></td><td>${a.kind}</td><td class="mono">${a.sha256}</td><td>${bytes(a.size)}</td><td class="mono">${a.signedBy ?? ''}</td></tr>`,
        )}</tbody></table>`;

  const testResults = (t: TaskRecord) => {
    const stages = (t.result?.['stages'] ?? []) as { name: string; outcome: string; detail: string }[];
    return html`<p>Test task ${t.id}: ${stateOf(t.state)}</p>${stages.length === 0 ? '' : html`<table><thead><tr><th scope="col">Stage</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead><tbody>${stages.map((x) => html`<tr><td>${x.name}</td><td class="${x.outcome === 'passed' ? 'ok' : x.outcome === 'failed' ? 'bad' : 'muted'}">${x.outcome}</td><td>${x.detail}</td></tr>`)}</tbody></table>`}`;
  };

  // ── live log ─────────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/builds/:id/tasks/:task/log',
    guard(async (req, reply) => {
      const p = z
        .object({ id: z.coerce.number().int().positive(), task: z.coerce.number().int().positive() })
        .parse(req.params);
      const q = z.object({ start: z.coerce.number().int().min(0).optional() }).parse(req.query);
      const task = await store.tasks.get(p.task);
      if (!task || task.buildId !== p.id) throw new LenixError('TASK_NOT_FOUND', `build ${p.id} has no task ${p.task}`);
      // Only the tail is rendered; earlier output is a link away (or the raw log).
      const start = q.start ?? Math.max(0, task.logSize - LOG_TAIL);
      const text = (await store.logs.read(task.id, start, LOG_TAIL)).toString('utf8');
      const end = start + Buffer.byteLength(text);
      const finished = isFinished(task.state);
      return send(req, reply, {
        title: `Task ${task.id} log`,
        json: `/api/v1/tasks/${task.id}`,
        scripts: ['log.js'],
        body: () => html`
<p><a href="/builds/${p.id}">Build ${p.id}</a> · ${task.kind === 'binary' ? `build ${task.arch}` : task.kind} · ${stateOf(task.state)} · <span id="log-status" role="status" aria-live="polite">${finished ? `finished` : 'running (reload or enable JavaScript to follow)'}</span> · <a href="/api/v1/tasks/${task.id}/log" download="task-${task.id}.log">raw log (${bytes(task.logSize)})</a></p>
${start > 0 ? html`<p><a href="/builds/${p.id}/tasks/${task.id}/log?start=${Math.max(0, start - LOG_TAIL)}">Earlier output</a> <span class="muted">(showing bytes ${start}–${end} of ${task.logSize})</span></p>` : ''}
<p id="log-truncated" hidden class="muted">Older lines were dropped from the page to keep up; the raw log has everything.</p>
<pre id="log" tabindex="0" aria-label="Log output" data-task="${task.id}" data-end="${q.start === undefined ? end : task.logSize}" data-finished="${finished || q.start !== undefined ? '1' : '0'}">${text}</pre>`,
      });
    }),
  );

  // ── sources ──────────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/sources',
    guard(async (req, reply) => {
      const sources = await store.sources.list();
      return send(req, reply, {
        title: 'Sources',
        json: '/api/v1/sources',
        body: () =>
          html`<table><thead><tr><th scope="col">Name</th><th scope="col">Repository</th><th scope="col">Branch</th><th scope="col">Watched</th><th scope="col">Last fetched</th></tr></thead><tbody>${sources.map((x) => html`<tr><td><a href="/sources/${x.name}">${x.name}</a></td><td class="mono">${repoUrl(x.url)}</td><td>${x.branch}</td><td>${x.watch ? 'yes' : 'no'}</td><td>${iso(x.lastFetchedAt)}</td></tr>`)}</tbody></table>`,
      });
    }),
  );
  app.get(
    '/sources/:name',
    guard(async (req, reply) => {
      const { name } = z.object({ name: z.string().max(100) }).parse(req.params);
      const source = await s.sources.require(name);
      const [commits, builds] = await Promise.all([
        store.sources.listCommits(source.id, 30),
        store.builds.list({ sourceId: source.id, limit: 100 }),
      ]);
      return send(req, reply, {
        title: `Source ${source.name}`,
        json: `/api/v1/sources/${encodeURIComponent(source.name)}`,
        body: () => html`
<p class="mono">${repoUrl(source.url)} @ ${source.branch}${source.watch ? ' (watched)' : ''}</p>
<h2>Recent commits</h2>
<table><thead><tr><th scope="col">Commit</th><th scope="col">Subject</th><th scope="col">Committed</th><th scope="col">Builds</th></tr></thead><tbody>${commits.map((c) => html`<tr><td class="mono">${c.sha.slice(0, 12)}</td><td>${c.subject}</td><td>${iso(c.committedAt * 1000)}</td><td>${builds.filter((b) => b.commit.sha === c.sha).map((b) => html`<a href="/builds/${b.id}">${b.id}</a> ${stateOf(b.state)} `)}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  // ── repositories ─────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/repositories',
    guard(async (req, reply) => {
      const repos = await releases.listRepos();
      return send(req, reply, {
        title: 'Repositories',
        json: '/api/v1/repos',
        body: () =>
          html`<table><thead><tr><th scope="col">Name</th><th scope="col">Arches</th><th scope="col">Current snapshot</th><th scope="col">Keys</th></tr></thead><tbody>${repos.map(
            (r) =>
              html`<tr><td><a href="/repositories/${r.name}">${r.name}</a></td><td>${r.arches.join(', ')}</td><td>${r.currentSnapshotId ?? html`<span class="muted">none</span>`}</td><td class="mono">${r.keys
                .filter((k) => !k.retiredAt)
                .map((k) => k.fingerprint.slice(-16))
                .join(', ')}</td></tr>`,
          )}</tbody></table>`,
      });
    }),
  );
  app.get(
    '/repositories/:name',
    guard(async (req, reply) => {
      const { name } = z.object({ name: z.string().max(64) }).parse(req.params);
      const repo = await s.releases.requireRepo(name);
      const [snapshots, rels] = await Promise.all([
        releases.listSnapshots(repo.id),
        releases.listReleases(repo.id, 30),
      ]);
      const base = deps.config.publicUrl;
      return send(req, reply, {
        title: `Repository ${repo.name}`,
        json: `/api/v1/repos/${encodeURIComponent(repo.name)}`,
        body: (v) => html`
<h2>How to install</h2>
<pre>sudo curl -o /etc/yum.repos.d/${repo.name}.repo ${base}/repos/${repo.name}.repo
sudo dnf install PACKAGE</pre>
<p><a href="/repos/${repo.name}.repo">${repo.name}.repo</a> (gpgcheck=1, repo_gpgcheck=1) · current snapshot: ${repo.currentSnapshotId ?? 'none'}${repo.currentSnapshotId ? html` · SBOM of the current snapshot: ${SBOM_FORMATS.map((f) => html`<a href="/api/v1/repos/${repo.name}/snapshots/current/sbom?format=${f}" download>${f}</a> `)}` : ''}</p>
<h2>Snapshots</h2>
<table><thead><tr><th scope="col">Snapshot</th><th scope="col">State</th><th scope="col">Packages</th><th scope="col">Advisories</th><th scope="col">Published</th></tr></thead><tbody>${snapshots.map((x) => html`<tr><td>${x.id}${x.id === repo.currentSnapshotId ? html` <span class="badge">current</span>` : ''}</td><td>${stateOf(x.state)}</td><td>${x.packages.length}</td><td>${x.advisories.map((a) => html`<a href="/errata/${a}">${a}</a> `)}</td><td>${iso(x.publishedAt)}</td></tr>`)}</tbody></table>
<h2>Releases</h2>
<table><thead><tr><th scope="col">Release</th><th scope="col">State</th><th scope="col">Builds</th><th scope="col">Created</th><th scope="col">Action</th></tr></thead><tbody>${rels.map((r) => html`<tr><td>${r.id}</td><td>${stateOf(r.state)}${r.reason ? html`<br><span class="muted">${r.reasonCode}: ${r.reason}</span>` : ''}</td><td>${r.builds.map((b) => html`<a href="/builds/${b}">${b}</a> `)}</td><td>${r.createdBy}, ${iso(r.createdAt)}</td><td>${v.maintainer && r.state === 'planned' ? html`<form class="inline" method="post" action="/releases/${r.id}/approve"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Approve</button></form>` : ''}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  // ── errata ───────────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/errata',
    guard(async (req, reply) => {
      const q = z
        .object({ type: z.enum(['', ...ADVISORY_TYPES]).optional(), severity: z.enum(['', ...SEVERITIES]).optional() })
        .parse(req.query);
      const { viewer } = await viewerOf(req);
      const list = (
        await s.errata.store.list({
          ...(q.type ? { type: q.type } : {}),
          ...(q.severity ? { severity: q.severity } : {}),
        })
      ).filter((a) => a.status === 'released' || viewer.maintainer);
      return send(req, reply, {
        title: 'Errata',
        json: '/api/v1/errata',
        body: () => html`
<form class="filters" method="get" action="/errata" role="search" aria-label="Filter advisories">
<label for="e-type">Type<select id="e-type" name="type"><option value="">any</option>${ADVISORY_TYPES.map((t) => html`<option${t === q.type ? html` selected` : ''}>${t}</option>`)}</select></label>
<label for="e-sev">Severity<select id="e-sev" name="severity"><option value="">any</option>${SEVERITIES.map((t) => html`<option${t === q.severity ? html` selected` : ''}>${t}</option>`)}</select></label>
<button type="submit">Filter</button>
</form>
<p><a href="/errata/feed.atom">Atom feed</a></p>
${list.length === 0 ? html`<p class="muted">No advisories.</p>` : html`<table><thead><tr><th scope="col">Advisory</th><th scope="col">Type</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Repository</th><th scope="col">Title</th><th scope="col">Updated</th></tr></thead><tbody>${list.map((a) => html`<tr><td><a href="/errata/${a.id}">${a.id}</a></td><td>${a.type}</td><td>${a.severity ?? ''}</td><td>${stateOf(a.status)}</td><td>${a.repo}</td><td>${a.title}</td><td>${iso(a.updated)}</td></tr>`)}</tbody></table>`}`,
      });
    }),
  );
  app.get(
    '/errata/:id',
    guard(async (req, reply) => {
      const { id } = z.object({ id: ADVISORY_ID }).parse(req.params);
      const { viewer } = await viewerOf(req);
      const a = await s.errata.require(id);
      if (a.status !== 'released' && !viewer.maintainer) throw new LenixError('ERRATA_NOT_FOUND', `no advisory ${id}`);
      const list = cves(a);
      const osv = a.status === 'released' && (await s.releases.requireRepo(a.repo)).osvEcosystem !== null;
      return send(req, reply, {
        title: `${a.id}: ${a.title}`,
        json: `/api/v1/errata/${encodeURIComponent(a.id)}`,
        body: (v) => html`
<p>${a.type}${a.severity ? html` · <strong>${a.severity}</strong>` : ''} · ${stateOf(a.status)} · version ${a.version} · repository <a href="/repositories/${a.repo}">${a.repo}</a></p>
${a.synopsis ? html`<p>${a.synopsis}</p>` : ''}
<table><tbody><tr><th scope="row">Issued</th><td>${iso(a.issued)}</td></tr><tr><th scope="row">Updated</th><td>${iso(a.updated)}</td></tr>${a.upstreamId ? html`<tr><th scope="row">Rebuild of</th><td>${a.upstreamId}</td></tr>` : ''}<tr><th scope="row">Reboot suggested</th><td>${a.rebootSuggested ? 'yes' : 'no'}</td></tr></tbody></table>
<h2>Description</h2>
<pre>${a.description || a.title}</pre>
<h2>CVEs</h2>
${list.length === 0 ? html`<p class="muted">None.</p>` : html`<ul class="cves">${a.references.filter((r) => r.type === 'cve').map((r) => html`<li><a href="${r.href}">${r.id}</a></li>`)}</ul>`}
${a.references.some((r) => r.type !== 'cve') ? html`<h2>Other references</h2><ul>${a.references.filter((r) => r.type !== 'cve').map((r) => html`<li>${r.type}: <a href="${r.href}">${r.title}</a></li>`)}</ul>` : ''}
<h2>Packages</h2>
<table><thead><tr><th scope="col">Package</th><th scope="col">File</th><th scope="col">SHA-256</th></tr></thead><tbody>${a.packages.map((p) => html`<tr><td>${nevraOf(p)}</td><td>${p.filename}</td><td class="mono">${p.sha256 ?? ''}</td></tr>`)}</tbody></table>
<p>Exports: ${osv ? html`<a href="/errata/osv/${osvId(a.id)}.json">OSV</a> · ` : ''}<a href="/errata/oval/${a.repo}.xml">OVAL for ${a.repo}</a> · <code>dnf update --advisory ${a.id}</code></p>
${v.maintainer && a.status === 'draft' ? html`<form method="post" action="/errata/${a.id}/approve"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Approve</button></form>` : ''}`,
      });
    }),
  );

  // ── ledger ───────────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/ledger',
    guard(async (req, reply) => {
      const q = z
        .object({
          sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional()
            .or(z.literal('')),
          build: z.coerce.number().int().positive().optional().or(z.literal('')),
          entry: z.coerce.number().int().min(0).optional(),
        })
        .parse(req.query);
      const cp = await s.ledger.checkpoint();
      const note = parseNote(cp.note);
      const keys = [q.sha256 ? `sha256:${q.sha256}` : null, q.build ? `build:${q.build}` : null].filter(
        (k): k is string => k !== null,
      );
      const bundle = keys.length > 0 ? await s.ledger.bundle(keys) : null;
      const found = bundle ? checked(bundle) : null;
      const rows = found?.entries ?? [];
      return send(req, reply, {
        title: 'Transparency ledger',
        json:
          keys.length > 0
            ? `/api/v1/ledger/lookup?${new URLSearchParams(Object.entries({ sha256: q.sha256 || undefined, build: q.build ? String(q.build) : undefined }).filter((x): x is [string, string] => !!x[1]))}`
            : '/api/v1/ledger',
        body: () => html`
<h2>Current checkpoint</h2>
<pre>${note.text}</pre>
<p>Signed by: ${note.signatures.map((x) => html`<span class="badge">${x.name}</span> `)} <span class="muted">(log key at <a href="/ledger/keys">/ledger/keys</a>; cosignatures by witnesses are listed with their names)</span></p>
<h2>Look up</h2>
<form class="filters" method="get" action="/ledger" role="search" aria-label="Look up ledger entries">
<label for="l-sha">Artifact SHA-256<input id="l-sha" name="sha256" size="66" value="${q.sha256 ?? ''}"></label>
<label for="l-build">Build id<input id="l-build" name="build" size="8" value="${q.build ?? ''}"></label>
<button type="submit">Look up</button>
</form>
${bundle ? html`<h2>Entries</h2>${rows.length === 0 ? html`<p class="muted">Nothing recorded for that.</p>` : rows.map((r) => html`<section aria-label="Entry ${r.index}"${r.index === q.entry ? html` class="card"` : ''}><h3>Entry ${r.index} <span class="mono">${r.type}</span> ${r.ok ? html`<span class="ok">✓ verified</span>` : html`<span class="bad">✗ proof fails</span>`}</h3><p class="muted">Inclusion proof (${r.proof.length} hashes, leaf to root of tree size ${found?.cp.size}):</p><pre>${r.proof.join('\n')}</pre></section>`)}` : ''}`,
      });
    }),
  );

  // ── sign in and actions ──────────────────────────────────────────────────────────────────────────
  // ── tokens (admins) ─────────────────────────────────────────────────────────────────────────────────
  app.get(
    '/tokens',
    guard(async (req, reply) => {
      const { viewer } = await viewerOf(req);
      if (!viewer.name) throw new LenixError('UNAUTHENTICATED', 'sign in with an admin token');
      if (!viewer.admin) throw new LenixError('FORBIDDEN', 'the tokens page needs the admin scope');
      const now = deps.clock.now();
      const tokens = await s.tokens.list();
      const state = (t: TokenRecord) =>
        t.revokedAt !== null
          ? `revoked ${iso(t.revokedAt)}`
          : t.expiresAt !== null && t.expiresAt <= now
            ? `expired ${iso(t.expiresAt)}`
            : t.expiresAt !== null
              ? `active, expires ${iso(t.expiresAt)}`
              : 'active';
      return send(req, reply, {
        title: 'Tokens',
        json: '/api/v1/tokens',
        body: (
          v,
        ) => html`<h1>Tokens</h1><p class="muted">Secrets are shown once, when a token is made (<code>lenix token create</code>); a revoked token is refused at once and its agents' leases end.</p>
<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">State</th><th scope="col">Action</th></tr></thead><tbody>${tokens.map((t) => html`<tr><td>${t.id}</td><td>${t.name}</td><td>${t.scopes.join(', ')}</td><td>${iso(t.createdAt)}</td><td>${state(t)}</td><td>${t.revokedAt === null ? html`<form class="inline" method="post" action="/tokens/${t.id}/revoke"><input type="hidden" name="csrf" value="${v.csrf}"><button class="secondary" type="submit">Revoke</button></form>` : ''}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  app.get(
    '/login',
    guard(async (req, reply) =>
      send(req, reply, {
        title: 'Sign in',
        body: () =>
          html`<form class="stack" method="post" action="/login"><p><label for="token">API token (maintainer scope for actions)<input id="token" name="token" type="password" autocomplete="current-password" required size="48"></label></p><p><button type="submit">Sign in</button></p></form><p class="muted">Reading needs no account. The token is kept in an HttpOnly cookie for this site only.</p>`,
      }),
    ),
  );
  app.post(
    '/login',
    guard(async (req, reply) => {
      const { token } = z.object({ token: z.string().trim().min(8).max(200) }).parse(req.body);
      const caller = await s.auth.authenticate(`Bearer ${token}`, deps.clock.now());
      if (!caller) throw new LenixError('UNAUTHENTICATED', 'unknown token');
      const secure = req.protocol === 'https';
      return reply
        .header(
          'set-cookie',
          serializeCookie(COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', secure, maxAge: 12 * 3600 }),
        )
        .redirect('/', 303);
    }),
  );
  app.post(
    '/logout',
    guard(async (req, reply) => {
      await requireForm(req, false);
      return reply
        .header('set-cookie', serializeCookie(COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0 }))
        .redirect('/', 303);
    }),
  );

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
  app.post(
    '/tokens/:id/revoke',
    guard(async (req, reply) => {
      const caller = await requireForm(req, false);
      if (!hasScope(caller, 'admin')) throw new LenixError('FORBIDDEN', 'revoking tokens needs the admin scope');
      const { id } = IdParam.parse(req.params);
      await s.tokens.revoke(id, caller);
      return reply.redirect('/tokens', 303);
    }),
  );
  app.post(
    '/builds/:id/rebuild',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      const b = await store.builds.get(id);
      if (!b) throw new LenixError('BUILD_NOT_FOUND', `build ${id} does not exist`);
      const made = await s.builds.create({
        source: b.sourceName,
        ref: b.commit.sha,
        createdBy: caller.name,
        ...(b.targetRepo ? { repo: b.targetRepo } : {}),
      });
      return reply.redirect(`/builds/${made.build.id}`, 303);
    }),
  );
  app.post(
    '/builds/:id/cancel',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      await deps.store.builds.cancel(id, `cancelled by ${caller.name}`, deps.clock.now());
      deps.notifier.emit('queue');
      return reply.redirect(`/builds/${id}`, 303);
    }),
  );
  app.post(
    '/releases/:id/approve',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      const r = await s.releases.approve(id, caller.name);
      const repo = await releases.getRepo(r.repoId);
      return reply.redirect(`/repositories/${repo?.name ?? ''}`, 303);
    }),
  );
  app.post(
    '/errata/:id/approve',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = z.object({ id: ADVISORY_ID }).parse(req.params);
      await s.errata.approve(id, caller.name);
      return reply.redirect(`/errata/${id}`, 303);
    }),
  );
}
