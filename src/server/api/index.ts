import type { ServerDeps } from '../context.js';
import type { Services, ZodApp } from '../types.js';
import { registerAgentsRoutes } from './agents.js';
import { registerArtifactsRoutes } from './artifacts.js';
import { registerBatchesRoutes } from './batches.js';
import { registerBuildsRoutes } from './builds.js';
import { registerErrataRoutes } from './errata.js';
import { registerImportsRoutes } from './imports.js';
import { registerKeysRoutes } from './keys.js';
import { registerLedgerRoutes } from './ledger.js';
import { registerMirrorsRoutes } from './mirrors.js';
import { registerReleasesRoutes } from './releases.js';
import { registerReposRoutes } from './repos.js';
import { registerSbomRoutes } from './sbom.js';
import { registerSourcesRoutes } from './sources.js';
import { registerStatusRoutes } from './status.js';
import { registerTargetsRoutes } from './targets.js';
import { registerTasksRoutes } from './tasks.js';
import { registerTokensRoutes } from './tokens.js';

/**
 * The HTTP API, one module per resource: each holds every method on its paths (public reads and scoped
 * writes side by side, the scope checked in the handler), and every JSON shape comes from present.ts.
 */
export const RESOURCE_ROUTES: readonly ((r: ZodApp, deps: ServerDeps, s: Services) => void)[] = [
  registerStatusRoutes,
  registerSourcesRoutes,
  registerTargetsRoutes,
  registerBuildsRoutes,
  registerBatchesRoutes,
  registerTasksRoutes,
  registerArtifactsRoutes,
  registerAgentsRoutes,
  registerTokensRoutes,
  registerKeysRoutes,
  registerReposRoutes,
  registerMirrorsRoutes,
  registerReleasesRoutes,
  registerImportsRoutes,
  registerErrataRoutes,
  registerLedgerRoutes,
  registerSbomRoutes,
];
