import formbody from '@fastify/formbody';
import type { ServerDeps } from '../context.js';
import type { App, Services } from '../types.js';
import { registerDashboardPages } from './pages/dashboard.js';
import { registerBuildsPages } from './pages/builds.js';
import { registerSourcesPages } from './pages/sources.js';
import { registerRepositoriesPages } from './pages/repositories.js';
import { registerErrataPages } from './pages/errata.js';
import { registerLedgerPages } from './pages/ledger.js';
import { registerAccountPages } from './pages/account.js';
import { createWebKit } from './session.js';

/**
 * The public web interface (server-rendered HTML, readable with JavaScript off), one module per page group
 * under pages/. Pages only read; the few actions (rebuild, cancel, approve a release or an advisory, revoke a
 * token) are POST forms that need a signed-in token with the right scope and the form token of its session
 * (session.ts). Each page names the API URL it is built on.
 */
export async function registerWebRoutes(app: App, deps: ServerDeps, s: Services): Promise<void> {
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  const kit = createWebKit(deps, s);
  registerDashboardPages(app, kit);
  registerBuildsPages(app, kit);
  registerSourcesPages(app, kit);
  registerRepositoriesPages(app, kit);
  registerErrataPages(app, kit);
  registerLedgerPages(app, kit);
  registerAccountPages(app, kit);
}
