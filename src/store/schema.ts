import type { Generated } from 'kysely';

/**
 * The database as Kysely sees it. Times are integer milliseconds since the epoch (bigint in PostgreSQL,
 * parsed back to numbers), JSON is stored as text, booleans as 0/1, so that one schema serves both dialects.
 */
export interface Database {
  sources: SourcesTable;
  commits: CommitsTable;
  builds: BuildsTable;
  tasks: TasksTable;
  agents: AgentsTable;
  leases: LeasesTable;
  artifacts: ArtifactsTable;
  log_chunks: LogChunksTable;
  events: EventsTable;
  tokens: TokensTable;
  lookaside: LookasideTable;
  keys: KeysTable;
  settings: SettingsTable;
  repos: ReposTable;
  releases: ReleasesTable;
  snapshots: SnapshotsTable;
  leaders: LeadersTable;
  ledger_entries: LedgerEntriesTable;
  ledger_subjects: LedgerSubjectsTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  ledger_witnesses: LedgerWitnessesTable;
  mirrors: MirrorsTable;
  repo_expiries: RepoExpiriesTable;
  mirror_checks: MirrorChecksTable;
  advisories: AdvisoriesTable;
  advisory_counters: AdvisoryCountersTable;
  targets: TargetsTable;
  package_metadata: PackageMetadataTable;
  batches: BatchesTable;
  imports: ImportsTable;
  rpm_headers: RpmHeadersTable;
}

/** Header digests of signed and imported package files (migration 0017). */
export interface RpmHeadersTable {
  sha256: string;
  header_sha256: string;
  header_sha1: string;
  payload_digest: string | null;
}

export interface ImportsTable {
  id: Generated<number>;
  sha256: string;
  name: string;
  nevra: string;
  arch: string;
  kind: string; // rpm | srpm
  size: number;
  key_fingerprint: string | null; // null: imported unsigned (--allow-unsigned)
  repo: string;
  imported_by: string;
  created_at: number;
}

export interface BatchesTable {
  id: Generated<number>;
  target_id: number;
  groups: string; // JSON: source names per group
  builds: string; // JSON: build ids per started group
  state: string; // running | succeeded | failed | cancelled
  reason: string | null;
  created_by: string;
  created_at: number;
  finished_at: number | null;
}

export interface TargetsTable {
  id: Generated<number>;
  name: string;
  build_repo: string;
  from_repos: string; // JSON array of repository names
  external_repos: string; // JSON array of {url, key}
  arches: string; // JSON array
  macros: string; // JSON object: macro name -> value
  release_to: string | null;
  created_at: number;
  updated_at: number;
  platform: string | null; // 0016
}

export interface AdvisoriesTable {
  id: Generated<number>;
  advisory_id: string;
  repo_id: number;
  type: string;
  severity: string | null;
  title: string;
  synopsis: string;
  description: string;
  issued_at: number;
  updated_at: number;
  version: number;
  status: string;
  reboot_suggested: number;
  refs: string;
  packages: string;
  upstream_id: string | null;
  release_id: number | null;
  created_by: string;
  approved_by: string | null;
  created_at: number;
}

export interface AdvisoryCountersTable {
  scope: string;
  last_number: number;
}

export interface LedgerEntriesTable {
  idx: number;
  data: Uint8Array;
  leaf_hash: Uint8Array;
  kind: string;
  subject: string;
  created_at: number;
}

export interface LedgerSubjectsTable {
  key: string;
  idx: number;
}

export interface MirrorsTable {
  url: string;
  rsync_url: string | null;
  country: string | null;
  contact: string | null;
  created_at: number;
}

export interface MirrorChecksTable {
  mirror_url: string;
  repo_id: number;
  arch: string;
  state: string; // current | behind | bad | unreachable
  snapshot_id: number | null; // the snapshot the mirror serves (current, behind)
  behind: number | null; // snapshots published since that one
  sha256: string | null; // of the repomd.xml it served
  detail: string | null;
  checked_at: number;
}

export interface RepoExpiriesTable {
  repo_id: number;
  through_snapshot_id: number;
  expired_at: number;
}

export interface LedgerWitnessesTable {
  url: string;
  created_at: number;
}

export interface LedgerCheckpointsTable {
  size: number;
  note: string;
  created_at: number;
}

export interface KeysTable {
  fingerprint: string;
  name: string;
  algorithm: string;
  public_key: string;
  created_at: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface ReposTable {
  id: Generated<number>;
  name: string;
  arches: string;
  keys: string;
  current_snapshot_id: number | null;
  keep_days: number;
  created_at: number;
  vendor: string | null;
  distro: string | null;
  errata_prefix: string | null;
  osv_ecosystem: string | null;
  follow_target_id: number | null;
  auto_release: Generated<number>;
  keep_versions: Generated<number>; // 0: every version (0015)
}

export interface ReleasesTable {
  id: Generated<number>;
  repo_id: number;
  state: string;
  builds: string;
  plan: string;
  override_reason: string | null;
  created_by: string;
  created_at: number;
  approved_by: string | null;
  approved_at: number | null;
  snapshot_id: number | null;
  finished_at: number | null;
  reason_code: string | null;
  reason: string | null;
}

export interface SnapshotsTable {
  id: Generated<number>;
  repo_id: number;
  release_id: number | null;
  state: string;
  packages: string;
  repomd: string | null;
  key_fingerprint: string | null;
  created_at: number;
  published_at: number | null;
  advisories: string | null;
  files: string | null;
}

export interface LeadersTable {
  role: string;
  holder: string;
  fencing: number;
  expires_at: number;
}

export interface SourcesTable {
  id: Generated<number>;
  name: string;
  url: string;
  branch: string;
  watch: number;
  created_at: number;
  last_fetched_at: number | null;
  last_seen_commit: string | null;
  hook_secret: string | null;
  target_id: number | null;
}

export interface CommitsTable {
  id: Generated<number>;
  source_id: number;
  sha: string;
  tree: string;
  committed_at: number; // seconds, as git reports it; also SOURCE_DATE_EPOCH
  subject: string;
  recorded_at: number;
}

export interface BuildsTable {
  id: Generated<number>;
  source_id: number;
  commit_id: number;
  ref: string;
  state: string;
  priority: number;
  arches: string; // JSON array of target architectures
  spec_path: string;
  package_name: string;
  package_evr: string;
  created_by: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  reason_code: string | null;
  reason: string | null;
  target_repo: string | null; // (0003)
  declared_packages: string | null; // JSON array of {name, evr} the spec declares (0008)
  target_id: number | null; // (0010)
  batch_id: number | null; // (0010)
}

export interface TasksTable {
  id: Generated<number>;
  build_id: number;
  source_id: number;
  kind: string;
  role: string;
  arch: string;
  state: string;
  priority: number;
  vstart: number;
  attempts: number;
  max_attempts: number;
  fencing_token: number;
  lease_id: number | null;
  agent_id: number | null;
  cancel_requested: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  reason_code: string | null;
  reason: string | null;
  result: string | null; // JSON: buildroot record and other results the agent reported
  log_size: number;
  subject: string | null; // JSON: role-specific inputs (0002)
}

export interface AgentsTable {
  id: Generated<number>;
  name: string;
  role: string;
  arches: string; // JSON array
  capabilities: string; // JSON object
  token_id: number;
  registered_at: number;
  last_seen_at: number;
}

export interface LeasesTable {
  id: Generated<number>;
  task_id: number;
  agent_id: number;
  fencing_token: number;
  acquired_at: number;
  expires_at: number;
  ended_at: number | null;
  outcome: string | null; // success | failure | error | expired | cancelled | returned (given back unstarted)
}

export interface ArtifactsTable {
  id: Generated<number>;
  build_id: number;
  task_id: number;
  lease_id: number;
  sha256: string;
  size: number;
  name: string;
  kind: string; // srpm | rpm | log | buildroot
  arch: string | null;
  nevra: string | null;
  parent_id: number | null;
  created_at: number;
  signed_by: string | null; // key fingerprint (0002)
  pruned_at: number | null; // bytes pruned by policy (0015)
}

export interface LogChunksTable {
  task_id: number;
  start_offset: number;
  end_offset: number;
  data: Uint8Array;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  kind: string;
  build_id: number | null;
  task_id: number | null;
  data: string; // JSON
}

export interface TokensTable {
  id: Generated<number>;
  name: string;
  token_hash: string;
  scopes: string; // JSON array
  created_at: number;
  revoked_at: number | null;
  expires_at: number | null; // (0009)
}

export interface LookasideTable {
  sha256: string;
  name: string;
  size: number;
  uploaded_at: number;
}

export interface PackageMetadataTable {
  sha256: string;
  file: string;
  /** Each kind's plain entry length in bytes (migration 0019); the entry itself is stored only as a gzip member. */
  primary_size: number;
  filelists_size: number;
  other_size: number;
  primary_gz: Uint8Array;
  filelists_gz: Uint8Array;
  other_gz: Uint8Array;
  created_at: number;
}
