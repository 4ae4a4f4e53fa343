import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLocalSourceUrl, publicSourceUrl } from './source-url.js';

test('public records name a local source by its Lenix name and a remote one by its URL without credentials', () => {
  assert.equal(publicSourceUrl('hello', '/srv/private/hello.git'), 'lenix:source/hello');
  assert.equal(publicSourceUrl('hello', 'file:///home/alice/hello'), 'lenix:source/hello');
  assert.equal(
    publicSourceUrl('hello', 'https://user:secret@git.example.org/hello.git'),
    'https://git.example.org/hello.git',
  );
  assert.equal(publicSourceUrl('hello', 'https://git.example.org/hello.git'), 'https://git.example.org/hello.git');
  assert.equal(publicSourceUrl('hello', 'git@github.com:org/hello.git'), 'git@github.com:org/hello.git');
  assert.deepEqual(['/x', 'file:///x', 'https://x/y', 'git@h:p'].map(isLocalSourceUrl), [true, true, false, false]);
});
