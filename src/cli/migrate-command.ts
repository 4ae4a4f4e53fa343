import path from 'node:path';
import type { Command } from 'commander';

/**
 * `lenix migrate`: bring the database to this version's schema, apart from starting a server — for several
 * servers on one database, migrate once, then start (or roll) servers with `--no-migrate`.
 */
export function addMigrateCommand(p: Command): void {
  p.command('migrate')
    .description('apply the database migrations this version has (servers started with --no-migrate need it)')
    .option('--data <dir>', "the server's data folder (for the default SQLite database)", './lenix-data/server')
    .option('--database <url>', 'postgres://… (default SQLite at DATA/lenix.db)')
    .action(async (o: { data: string; database?: string }) => {
      const [{ openDatabase, parseDatabaseUrl }, { migrateToLatest }] = await Promise.all([
        import('../store/dialect.js'),
        import('../store/migrate.js'),
      ]);
      const { db, dialect } = openDatabase(
        parseDatabaseUrl(o.database ?? process.env['LENIX_DATABASE'] ?? path.join(path.resolve(o.data), 'lenix.db')),
      );
      try {
        const applied = await migrateToLatest(db, dialect);
        process.stdout.write(
          applied.length === 0 ? 'the database is up to date\n' : `applied ${applied.length}: ${applied.join(', ')}\n`,
        );
      } finally {
        await db.destroy();
      }
    });
}
