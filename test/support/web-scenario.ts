import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gitRepo, specWith } from './cli.js';
import { accessibility, launchBrowser, screenshotDir } from './browser.js';
import type { UpBuild, UpContext } from './up-scenarios.js';

/** The web interface of a `lenix up` in Chromium (test/e2e-up.test.ts): pages, live log, SBOM, advisory, accessibility. */
export async function webScenario(c: UpContext): Promise<void> {
  const shots = await screenshotDir();
  process.stdout.write(`# screenshots of the web pages: ${shots}\n`);
  const token = (await readFile(path.join(c.dir, 'data', 'admin.token'), 'utf8')).trim();
  const repo = path.join(c.dir, 'repos', 'webslow');
  await gitRepo(repo, { 'webslow.spec': specWith('webslow', 'echo "LENIX-WEB-LINE from %build"\nsleep 300') });
  assert.equal((await c.cli('source', 'add', 'webslow', repo)).code, 0);
  const running = await c.json<UpBuild>('build', 'webslow');
  const browser = await launchBrowser();
  try {
    // The pages' Content-Security-Policy forbids inline scripts; axe-core is injected as one, so the test bypasses it.
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const checkA11y = async (name: string) => {
      const violations = await accessibility(page);
      assert.deepEqual(violations, [], `${name}: accessibility violations`);
    };
    // Dashboard: the running build shows c.up (the page refreshes its live parts itself).
    await page.goto(`${c.url}/`);
    await page
      .locator('#running')
      .getByText(/webslow-1\.0-1/)
      .waitFor({ timeout: 120_000 });
    assert.ok(await page.getByRole('main').isVisible());
    await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
    await checkA11y('dashboard');

    // Its log page, followed live: the line %build prints arrives while the task is still running.
    const taskLink = page.locator('#running a', { hasText: /^\d+$/ }).first();
    await taskLink.click();
    await page.locator('#log').getByText('LENIX-WEB-LINE from %build').waitFor({ timeout: 120_000 });
    const taskId = Number(/tasks\/(\d+)\/log/.exec(page.url())![1]);
    assert.equal(
      (await c.api.json<{ state: string }>('GET', `/api/v1/tasks/${taskId}`)).state,
      'leased',
      'still running when the line is on screen',
    );
    await page.screenshot({ path: path.join(shots, 'live-log.png'), fullPage: true });
    await checkA11y('live log');
    // Anonymous actions are refused; pages show no token, private key or server path.
    for (const action of [
      `/builds/${running.id}/rebuild`,
      `/builds/${running.id}/cancel`,
      '/releases/1/approve',
      '/errata/LXSA-2026:0001/approve',
    ]) {
      const r = await fetch(`${c.url}${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'csrf=x',
        redirect: 'manual',
      });
      assert.ok([401, 403].includes(r.status), `${action}: ${r.status}`);
    }

    // A build page links SBOMs that download and parse.
    const builds = await c.json<{ id: number; package: string; state: string }[]>('builds');
    const hello = builds.find((b) => b.package === 'hello-c' && b.state === 'succeeded')!;
    await page.goto(`${c.url}/builds/${hello.id}`);
    assert.ok(await page.getByText('✓ verified').first().isVisible(), 'ledger statements are marked verified');
    await page.screenshot({ path: path.join(shots, 'build.png'), fullPage: true });
    await checkA11y('build');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'cyclonedx-json' }).click(),
    ]);
    const sbomFile = path.join(c.dir, 'web-sbom.json');
    await download.saveAs(sbomFile);
    const bom = JSON.parse(await readFile(sbomFile, 'utf8')) as {
      bomFormat: string;
      specVersion: string;
      components: unknown[];
    };
    assert.deepEqual([bom.bomFormat, bom.specVersion], ['CycloneDX', '1.6']);
    assert.ok(bom.components.length >= 2);

    // An advisory page lists its CVEs (a CVE reference added to the sample advisory by a maintainer).
    const [sample] = (await c.api.json<{ errata: { id: string }[] }>('GET', '/api/v1/errata')).errata;
    await c.api.json('PATCH', `/api/v1/errata/${sample!.id}`, {
      references: ['CVE-2026-40001', 'https://bugs.example.org/show_bug.cgi?id=7'],
    });
    await page.goto(`${c.url}/errata/${sample!.id}`);
    assert.deepEqual(await page.locator('ul.cves li').allInnerTexts(), ['CVE-2026-40001']);
    await page.screenshot({ path: path.join(shots, 'advisory.png'), fullPage: true });
    await checkA11y('advisory');

    for (const [name, p] of [
      ['builds', '/builds'],
      ['sources', '/sources'],
      ['repositories', '/repositories'],
      ['repository', '/repositories/lenix'],
      ['errata', '/errata'],
      ['ledger', `/ledger?build=${hello.id}`],
      ['login', '/login'],
    ] as const) {
      await page.goto(`${c.url}${p}`);
      await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
      await checkA11y(name);
      const text = await page.content();
      assert.ok(!text.includes(token), `${p} shows no token`);
      assert.ok(!text.includes(c.dir), `${p} shows no server path`);
      assert.doesNotMatch(text, /PRIVATE KEY|PRIVATE\+KEY/, `${p} shows no private key`);
    }

    // A maintainer signs in and the actions appear (with their form token).
    await page.goto(`${c.url}/login`);
    await page.getByLabel(/API token/).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.goto(`${c.url}/builds/${hello.id}`);
    assert.ok(await page.getByRole('button', { name: 'Rebuild' }).isVisible());
  } finally {
    await browser.close();
    await c.cli('build', 'cancel', String(running.id)); // the node is free for the next tests
  }
}
