import type { Kysely } from 'kysely';
import { AgentStore } from './agent-store.js';
import { ArtifactStore } from './artifact-store.js';
import { BuildStore } from './build-store.js';
import type { Dialect } from './dialect.js';
import { LogStore } from './log-store.js';
import { TaskQueue } from './queue/task-queue.js';
import type { Database } from './schema.js';
import { SourceStore } from './source-store.js';
import { TargetStore } from './target-store.js';
import { BatchStore } from './batch-store.js';
import { ImportStore } from './import-store.js';
import { PackageMetadataStore } from './package-metadata-store.js';
import { LeaderStore } from './leader-store.js';
import { TokenStore } from './token-store.js';
import { MirrorStore } from './mirror-store.js';
import { HeaderDigestStore } from './header-store.js';

export type { ArtifactStore, NewArtifact } from './artifact-store.js';
export type { BuildFilter, BuildStore, NewBuild } from './build-store.js';
export type { TargetFields, TargetStore } from './target-store.js';
export type { CompleteResult, LeaseGrant, NextGrant, TaskQueue } from './queue/task-queue.js';

/**
 * The build spine's storage over both dialects, one room per concern on one Kysely handle: tokens, sources
 * and commits, builds (the targets they are built for, the batches that start them), the task queue, agents, artifacts (with lookaside),
 * imported packages, packages' repository metadata and header digests, and logs. Release, errata and
 * ledger records have their own stores on the same handle. Services take the narrowest of these they need.
 */
export class Store {
  readonly tokens: TokenStore;
  readonly sources: SourceStore;
  readonly builds: BuildStore;
  readonly tasks: TaskQueue;
  readonly agents: AgentStore;
  readonly artifacts: ArtifactStore;
  readonly logs: LogStore;
  readonly targets: TargetStore;
  readonly batches: BatchStore;
  readonly imports: ImportStore;
  readonly packageMetadata: PackageMetadataStore;
  readonly leaders: LeaderStore;
  readonly mirrors: MirrorStore;
  readonly headers: HeaderDigestStore;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {
    this.tokens = new TokenStore(db);
    this.sources = new SourceStore(db);
    this.builds = new BuildStore(db);
    this.tasks = new TaskQueue(db, dialect);
    this.agents = new AgentStore(db);
    this.artifacts = new ArtifactStore(db);
    this.logs = new LogStore(db);
    this.targets = new TargetStore(db);
    this.batches = new BatchStore(db);
    this.imports = new ImportStore(db);
    this.packageMetadata = new PackageMetadataStore(db);
    this.leaders = new LeaderStore(db);
    this.mirrors = new MirrorStore(db);
    this.headers = new HeaderDigestStore(db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
