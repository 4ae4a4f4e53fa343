import type { StoredAdvisory } from '../../store/errata-store.js';
import type { AgentRecord, BuildRecord, ReleaseRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { ErrataService } from './errata.js';

export interface Dashboard {
  readonly now: number;
  readonly queue: Readonly<Record<string, number>>;
  /** For each queued arch: build nodes online that build it (0: its builds wait visibly for one). */
  readonly nodesFor: Readonly<Record<string, number>>;
  readonly running: readonly { task: TaskRecord; build: BuildRecord | null; agent: string | null }[];
  readonly agentsOnline: readonly { agent: AgentRecord; task: TaskRecord | null }[];
  readonly builds: readonly BuildRecord[];
  readonly releases: readonly ReleaseRecord[];
  readonly advisories: readonly StoredAdvisory[];
}

/**
 * The dashboard's reads, shared: a read younger than `maxAgeMs` (a quarter second) is reused, and requests that
 * arrive while one read is running get its result (single flight), so a crowd of readers costs a few sets of
 * queries a second, not one per request. Renderings of a read (the page body, the JSON) are made once per read
 * (`memo`). The page and /api/v1/dashboard may thus be up to `maxAgeMs` old.
 */
export class DashboardService {
  private inFlight: Promise<Dashboard> | null = null;
  private last: { d: Dashboard; at: number } | null = null;
  private readonly renderings = new WeakMap<Dashboard, Map<string, unknown>>();

  constructor(
    private readonly deps: DepsOf<'clock' | 'config' | 'releases', 'agents' | 'builds' | 'tasks'>,
    private readonly errata: ErrataService,
    readonly maxAgeMs = 250,
  ) {}

  read(): Promise<Dashboard> {
    const now = this.deps.clock.now();
    if (this.last && now - this.last.at < this.maxAgeMs) return Promise.resolve(this.last.d);
    this.inFlight ??= dashboard(this.deps, this.errata)
      .then((d) => {
        this.last = { d, at: d.now };
        return d;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  /** A rendering of one read, made once (the page body, the JSON document). */
  memo<T>(d: Dashboard, what: string, make: () => T): T {
    let m = this.renderings.get(d);
    if (!m) {
      m = new Map();
      this.renderings.set(d, m);
    }
    if (!m.has(what)) m.set(what, make());
    return m.get(what) as T;
  }
}

/** What the dashboard shows (the web page and /api/v1/dashboard read the same thing). */
export async function dashboard(
  deps: DepsOf<'clock' | 'config' | 'releases', 'agents' | 'builds' | 'tasks'>,
  errata: ErrataService,
): Promise<Dashboard> {
  const now = deps.clock.now();
  const [queue, running, agents, builds, releases, advisories] = await Promise.all([
    deps.store.tasks.queueLength('build'),
    deps.store.tasks.listInState('leased', 100),
    deps.store.agents.list(),
    deps.store.builds.list({ limit: 10 }),
    deps.releases.listReleases(undefined, 5),
    errata.store.list({ status: 'released', limit: 5 }),
  ]);
  const names = new Map(agents.map((a) => [a.id, a.name]));
  const buildsById = new Map<number, BuildRecord | null>();
  for (const t of running)
    if (!buildsById.has(t.buildId)) buildsById.set(t.buildId, await deps.store.builds.get(t.buildId));
  const online = agents.filter((a) => now - a.lastSeenAt < deps.config.leaseMs * 2);
  const nodesFor = Object.fromEntries(
    Object.keys(queue).map((arch) => [
      arch,
      online.filter((a) => a.role === 'build' && a.arches.includes(arch)).length,
    ]),
  );
  return {
    now,
    queue,
    nodesFor,
    running: running.map((task) => ({
      task,
      build: buildsById.get(task.buildId) ?? null,
      agent: task.agentId === null ? null : (names.get(task.agentId) ?? null),
    })),
    agentsOnline: online.map((agent) => ({ agent, task: running.find((t) => t.agentId === agent.id) ?? null })),
    builds,
    releases,
    advisories,
  };
}
