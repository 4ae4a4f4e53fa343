import { STATUS_CODES } from 'node:http';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { LenixError } from '../core/errors.js';
import { toLenixError } from './http-errors.js';
import type { App, Services } from './types.js';
import { TokenAuthority } from './auth.js';
import { TokenService } from './services/tokens.js';
import type { ServerDeps } from './context.js';
import { ReleaseService } from './services/releases.js';
import { TargetService } from './services/targets.js';
import { BatchService } from './services/batches.js';
import { ImportService } from './services/imports.js';
import { PushService } from './services/push.js';
import { AgentService } from './services/agents.js';
import { BuildService } from './services/builds.js';
import { SourceService } from './services/sources.js';
import { LedgerService } from './services/ledger.js';
import { Attestations } from './services/attestations.js';
import { RESOURCE_ROUTES } from './api/index.js';
import { registerWebRoutes } from './web/routes.js';
import { SbomService } from './services/sboms.js';
import { ErrataService } from './services/errata.js';
import { MirrorService } from './services/mirrors.js';
import { RetentionService } from './services/retention.js';
import { DashboardService } from './services/dashboard.js';
import { Pipeline } from './services/pipeline.js';
import { publicSourceUrl } from '../core/source-url.js';
import { Metrics } from './metrics.js';
import { registerReplicaReads } from './replica-reads.js';
import { primaryOnly, type ReplicaReads } from '../store/read-routing.js';
import type { BuildRecord } from '../store/records.js';

/**
 * The Master Service API. Everything it needs comes in through `deps`; nothing is global. `replica`: the
 * database has a read replica (replica-reads.ts decides which requests use it).
 */
export async function createApp(
  given: Omit<ServerDeps, 'metrics'>,
  replica?: ReplicaReads,
): Promise<{ app: App; services: Services }> {
  const metrics = new Metrics({
    queue: async () =>
      (
        await Promise.all(
          (['build', 'sign', 'test'] as const).map(async (role) =>
            Object.entries(await given.store.tasks.queueLength(role)).map(([arch, n]) => ({ role, arch, n })),
          ),
        )
      ).flat(),
    ledgerSize: () => ledger.store.size(), // read when scraped, once the ledger below exists
    leader: (role) => given.leader.holds(role),
  });
  const deps: ServerDeps = { ...given, metrics };
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.maxJsonBytes,
    trustProxy: true,
    // Errors the router meets before any route runs get the same {code, message} body as every other error.
    frameworkErrors: (err, _req, reply) => {
      const e =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new LenixError('URI_TOO_LONG', 'a path parameter is longer than the router accepts')
          : err.code === 'FST_ERR_BAD_URL'
            ? new LenixError('BAD_REQUEST', 'the URL is malformed')
            : new LenixError('INTERNAL', 'internal error');
      void (reply as unknown as FastifyReply).status(e.status).type('application/json').send(e.toJSON());
    },
    // Errors of the HTTP parser itself (oversized headers, timeouts, garbage) are answered in the same shape.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
      const e =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? new LenixError('HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts')
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new LenixError('REQUEST_TIMEOUT', 'the request did not arrive in time')
            : new LenixError('BAD_REQUEST', 'the request is not valid HTTP');
      const body = JSON.stringify(e.toJSON());
      socket.end(
        `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });
  app.setValidatorCompiler(validatorCompiler);

  const sources = new SourceService(deps);
  const ledger = new LedgerService(deps, deps.config.ledgerOrigin);
  await ledger.init();
  const attest = new Attestations(deps, ledger, (key) => ledger.store.stagesFor(key));
  const errata = new ErrataService(deps);
  await errata.ensureExports();
  const pipeline = new Pipeline(deps, attest, errata, (key) => ledger.store.stagesFor(key));
  // Tokens are checked against the primary: a revocation must not wait for a replica to replay it.
  const auth = new TokenAuthority(primaryOnly(deps.store.tokens));
  const releases = new ReleaseService(deps, pipeline.publisher, pipeline);
  const builds = new BuildService(deps, sources, pipeline);
  const batches = new BatchService(deps, builds);
  pipeline.also('snapshot.published', (e) => batches.published(e.repo));
  pipeline.also('task.ended', async (e) => {
    if (e.task.kind === 'test' && e.task.state === 'succeeded') await releases.autoRelease(e.task.buildId);
  });
  pipeline.also('build.not-landed', (e) => batches.buildEnded(e.build, e.reason));
  pipeline.also('task.ended', async (e) => {
    if (e.batchId === null || (e.buildState !== 'failed' && e.buildState !== 'cancelled')) return;
    const b = await deps.store.builds.get(e.task.buildId);
    if (b) await batches.buildEnded(b, `build ${b.id} of ${b.sourceName} ${e.buildState}: ${b.reason ?? ''}`.trim());
  });
  const services: Services = {
    sources,
    builds,
    batches,
    agents: new AgentService(deps, pipeline),
    ledger,
    sboms: new SbomService(deps, ledger),
    errata,
    releases,
    targets: new TargetService(deps, releases),
    imports: new ImportService(deps, releases, attest),
    push: new PushService(deps, sources, builds),
    auth,
    tokens: new TokenService(deps, auth, () => services.agents.reap()),
    repairStatements: async () => 0,
    mirrors: new MirrorService(deps, releases, pipeline.publisher),
    retention: new RetentionService(deps, pipeline.publisher),
    dashboard: new DashboardService(deps, errata),
  };

  const specOf = async (b: BuildRecord) => {
    const s = await deps.store.sources.get(b.sourceId);
    return {
      url: s ? publicSourceUrl(s.name, s.url) : b.sourceName,
      text: await (s ? await sources.mirror(s, b.commit.sha) : sources.mirrorOf({ name: b.sourceName })).readFile(
        b.commit.sha,
        b.specPath,
      ),
    };
  };
  services.repairStatements = (recent, quietMs) => attest.repair(specOf, recent, quietMs);
  await attest.repair(specOf);

  // Raw bodies (artifact uploads, log appends, lookaside files) stream straight to their handler.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    req.caller = await services.auth.authenticate(req.headers.authorization, deps.clock.now());
  });
  if (replica) registerReplicaReads(app, replica, deps.store.db);

  app.setErrorHandler((err, req, reply) => {
    const e = toLenixError(err);
    metrics.errors.inc({ code: e.code });
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    void reply.status(e.status).type('application/json').send(e.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .status(404)
      .send(new LenixError('NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Lenix Master Service API',
        version: '1.0.0',
        description: 'Builds, tasks, logs, artifacts and the agent protocol.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });

  const typed = app.withTypeProvider<ZodTypeProvider>();
  for (const register of RESOURCE_ROUTES) register(typed, deps, services);
  await app.register(async (web) => registerWebRoutes(web, deps, services));
  typed.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return { app, services };
}
