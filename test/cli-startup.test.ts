import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMAND_MODULES, program } from '../src/cli/main.js';

/**
 * The CLI loads only the registration module of the command it runs (start-up time, issue 15). The table that
 * says which module holds which command must cover the whole program, and each entry must register its command.
 */
test('every top-level command is in the lazy-loading table, and its module alone registers it', async () => {
  const all = (await program({ code: 0 })).commands.map((c) => c.name());
  assert.ok(all.length >= 25, `the whole program has its commands (${all.length})`);
  assert.deepEqual([...all].sort(), Object.keys(COMMAND_MODULES).sort());
  for (const name of all) {
    const alone = await program({ code: 0 }, ['node', 'lenix', '--server', 'http://x', name, '--help']);
    assert.ok(
      alone.commands.some((c) => c.name() === name),
      `${name}: its module registers it`,
    );
    assert.ok(alone.commands.length < all.length, `${name}: only its own module is loaded`);
  }
});
