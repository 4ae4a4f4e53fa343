import path from 'node:path';
import type { Command } from 'commander';
import { printJson } from './output.js';

/** `lenix fsck`: the blob store and every published snapshot, re-hashed against the digests on record. */
export function addFsckCommand(p: Command, state: { code: number }): void {
  p.command('fsck')
    .description(
      're-hash every blob and every published package against the recorded digests; --repair restores bad copies from good ones',
    )
    .option('--data <dir>', "the server's data folder", './lenix-data/server')
    .option('--database <url>', 'postgres://… when the server runs on PostgreSQL (default SQLite at DATA/lenix.db)')
    .option('--blobs <url>', "the server's --blobs (s3://… or a folder; default DATA/blobs)")
    .option('--repair', 'restore bad or missing copies from good ones', false)
    .option('--json', 'print JSON')
    .action(async (o: { data: string; database?: string; blobs?: string; repair: boolean; json?: boolean }) => {
      const data = path.resolve(o.data);
      const [
        { fsck },
        { openBlobStore, parseBlobStore },
        { openDatabase, parseDatabaseUrl },
        { migrateToLatest },
        { ReleaseStore },
      ] = await Promise.all([
        import('../release/fsck.js'),
        import('../store/blob-config.js'),
        import('../store/dialect.js'),
        import('../store/migrate.js'),
        import('../store/release-store.js'),
      ]);
      const blobs = await openBlobStore(parseBlobStore(o.blobs ?? process.env['LENIX_BLOBS'], data));
      const { db, dialect } = openDatabase(
        parseDatabaseUrl(o.database ?? process.env['LENIX_DATABASE'] ?? path.join(data, 'lenix.db')),
      );
      try {
        await migrateToLatest(db, dialect);
        const report = await fsck(
          {
            blobs,
            releases: new ReleaseStore(db),
            reposDir: path.join(data, 'repos'),
          },
          { repair: o.repair },
        );
        if (!report.clean) state.code = 1;
        if (o.json) return printJson(report);
        for (const q of report.problems)
          process.stdout.write(
            `${q.problem} ${q.kind} ${q.where} (sha256 ${q.sha256})${q.repair ? `: ${q.repair}` : ''}\n`,
          );
        process.stdout.write(
          `${report.blobsChecked} blobs, ${report.publishedChecked} published packages and ${report.metadataChecked} metadata files checked; ${report.problems.length} problem(s)${report.problems.length > 0 ? (report.clean ? ', all repaired' : o.repair ? ', not all repaired' : '; run with --repair') : ''}\n`,
        );
      } finally {
        await db.destroy();
        blobs.close?.();
      }
    });
}
