import type { MirrorService } from './services/mirrors.js';
import type { RetentionService } from './services/retention.js';
import type { DashboardService } from './services/dashboard.js';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Caller, TokenAuthority } from './auth.js';
import type { AgentService } from './services/agents.js';
import type { BuildService } from './services/builds.js';
import type { ErrataService } from './services/errata.js';
import type { LedgerService } from './services/ledger.js';
import type { ReleaseService } from './services/releases.js';
import type { TargetService } from './services/targets.js';
import type { BatchService } from './services/batches.js';
import type { ImportService } from './services/imports.js';
import type { PushService } from './services/push.js';
import type { SbomService } from './services/sboms.js';
import type { SourceService } from './services/sources.js';
import type { TokenService } from './services/tokens.js';

/** Every request carries its authenticated caller (null: anonymous), set by app.ts's onRequest hook. */
declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/** What the routes are given: the server's services, wired in app.ts. */
export interface Services {
  readonly sources: SourceService;
  readonly builds: BuildService;
  readonly batches: BatchService;
  readonly imports: ImportService;
  readonly push: PushService;
  readonly agents: AgentService;
  readonly releases: ReleaseService;
  readonly targets: TargetService;
  readonly ledger: LedgerService;
  /**
   * Record statements a build is missing (a crash, or a database failover between a task's end and its
   * statement). `quietMs` skips builds that changed that recently.
   */
  repairStatements(recent: number, quietMs: number): Promise<number>;
  readonly sboms: SbomService;
  readonly errata: ErrataService;
  readonly auth: TokenAuthority;
  readonly tokens: TokenService;
  readonly mirrors: MirrorService;
  readonly retention: RetentionService;
  readonly dashboard: DashboardService;
}

export type App = FastifyInstance;
/** The Fastify instance with zod schemas as its type provider. */
export type ZodApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;
