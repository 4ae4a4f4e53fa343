import type { Command } from 'commander';
import type { MirrorCheckJson, MirrorJson } from '../client/lenix.js';
import { LenixError } from '../core/errors.js';
import { mirrorBase } from '../core/mirror-url.js';
import { apiClientFor as client } from './config.js';
import { printJson, table } from './output.js';

/** The mirror registry and checker, `lenix mirror add|list|show|remove|check`, and retention, `lenix prune`. */
export function addMirrorCommands(p: Command, state: { code: number }): void {
  addPruneCommand(p);
  const mirror = p
    .command('mirror')
    .description('mirrors that copy the published trees (rsync); the metalinks list those found current');
  mirror
    .command('add <url>')
    .description('register a mirror: its base URL, under which repositories appear as NAME/ARCH/')
    .option('--rsync <url>', 'its rsync URL')
    .option('--country <cc>', 'ISO 3166 country code (the metalink location)')
    .option('--contact <text>', 'who runs it')
    .option('--json', 'print JSON')
    .action(
      async (url: string, o: { rsync?: string; country?: string; contact?: string; json?: boolean }, cmd: Command) => {
        const m = await (await client(cmd)).mirrors.add({
          url,
          ...(o.rsync ? { rsyncUrl: o.rsync } : {}),
          ...(o.country ? { country: o.country } : {}),
          ...(o.contact ? { contact: o.contact } : {}),
        });
        if (o.json) return printJson(m);
        process.stdout.write(`mirror ${m.url} registered; it enters the metalinks once a check finds it current\n`);
      },
    );
  mirror
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await (await client(cmd)).mirrors.list();
      if (o.json) return printJson(r);
      process.stdout.write(
        `${table(
          r.mirrors.map((m) => [m.url, m.country ?? '-', summary(m), lastCheck(m)]),
          ['URL', 'COUNTRY', 'STATUS', 'CHECKED'],
        )}\n`,
      );
    });
  mirror
    .command('show <url>')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { json?: boolean }, cmd: Command) => {
      const base = mirrorBase(url);
      const m = (await (await client(cmd)).mirrors.list()).mirrors.find((x) => x.url === base);
      if (!m) throw new LenixError('MIRROR_NOT_FOUND', `no mirror ${base.slice(0, 200)}`);
      if (o.json) return printJson(m);
      process.stdout.write(
        `${m.url}\n  rsync: ${m.rsyncUrl ?? '-'}\n  country: ${m.country ?? '-'}\n  contact: ${m.contact ?? '-'}\n  registered: ${new Date(m.createdAt).toISOString()}\n  status: ${summary(m)}\n`,
      );
      for (const c of m.checks ?? [])
        process.stdout.write(`  ${c.repo}/${c.arch}: ${verdict(c)} (${new Date(c.checkedAt).toISOString()})\n`);
    });
  mirror.command('remove <url>').action(async (url: string, _o: unknown, cmd: Command) => {
    await (await client(cmd)).mirrors.remove(url);
    process.stdout.write(`mirror ${url} removed\n`);
  });
  mirror
    .command('check [url]')
    .description("fetch each mirror's repomd.xml per repository arch now and judge it (exit 1 when one is bad)")
    .option('--json', 'print JSON')
    .action(async (url: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const { checks } = await (await client(cmd)).mirrors.check(url);
      if (o.json) printJson({ checks });
      else
        process.stdout.write(
          `${table(
            checks.map((c) => [c.mirrorUrl, `${c.repo}/${c.arch}`, verdict(c)]),
            ['MIRROR', 'REPOSITORY', 'VERDICT'],
          )}\n`,
        );
      if (checks.some((c) => c.state === 'bad')) state.code = 1;
    });
}

/** `lenix prune`: retention by policy (cron it, or a systemd timer). */
function addPruneCommand(p: Command): void {
  p.command('prune')
    .description(
      'remove old snapshots and the bytes of build artifacts no snapshot references (records and ledger stay)',
    )
    .requiredOption('--keep-days <n>', 'keep what is younger than this many days')
    .requiredOption('--keep-builds <n>', "keep each source's newest N builds whatever their age")
    .option('--dry-run', 'say what would go, remove nothing')
    .option('--json', 'print JSON')
    .action(async (o: { keepDays: string; keepBuilds: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const keepDays = Number(o.keepDays);
      const keepBuilds = Number(o.keepBuilds);
      if (!Number.isInteger(keepDays) || keepDays < 0 || !Number.isInteger(keepBuilds) || keepBuilds < 0)
        throw new LenixError('BAD_REQUEST', '--keep-days and --keep-builds are whole numbers ≥ 0');
      const r = await (await client(cmd)).prune({ keepDays, keepBuilds, dryRun: o.dryRun === true });
      if (o.json) return printJson(r);
      for (const a of r.artifacts)
        process.stdout.write(`${r.dryRun ? 'would prune' : 'pruned'} ${a.name} (build ${a.buildId}) ${a.sha256}\n`);
      process.stdout.write(
        `${r.dryRun ? 'would prune' : 'pruned'}: ${r.artifacts.length} artifacts (${(r.bytes / 1024 ** 2).toFixed(1)} MiB), ${r.snapshots} snapshots\n`,
      );
    });
}

/** A check as one phrase: current, behind by N snapshots, BAD (…), unreachable (…). */
export function verdict(c: MirrorCheckJson): string {
  if (c.state === 'current') return `current (snapshot ${c.snapshotId})`;
  if (c.state === 'behind')
    return `behind by ${c.behind} snapshot${c.behind === 1 ? '' : 's'} (serves ${c.snapshotId})`;
  if (c.state === 'bad') return `BAD: serves a repomd.xml Lenix never published (sha256 ${c.sha256?.slice(0, 16)}…)`;
  return `unreachable (${c.detail ?? 'no answer'})`;
}

/** A mirror's worst finding over its repository arches. */
function summary(m: MirrorJson): string {
  const checks = m.checks ?? [];
  if (checks.length === 0) return 'not checked';
  for (const state of ['bad', 'unreachable', 'behind'] as const) {
    const hit = checks.filter((c) => c.state === state);
    if (hit.length > 0) return `${verdict(hit[0]!)} in ${hit.map((c) => `${c.repo}/${c.arch}`).join(', ')}`;
  }
  return 'current';
}

function lastCheck(m: MirrorJson): string {
  const at = Math.max(0, ...(m.checks ?? []).map((c) => c.checkedAt));
  return at > 0 ? new Date(at).toISOString() : '-';
}
