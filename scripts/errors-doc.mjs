// Regenerates docs/errors.md from src/core/errors.ts (compiled): `npm run build && node scripts/errors-doc.mjs`.
// test/api.test.ts fails when the two disagree.
import { writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../dist/src/core/errors.js';

let out = `# Error codes

Every error Lenix reports, over HTTP as \`{"code": "...", "message": "..."}\` and from the CLI as one line
\`lenix: CODE: reason\` on stderr with the exit status below. Codes are append-only: one is never renamed or
reused. This table is generated from src/core/errors.ts (\`node scripts/errors-doc.mjs\`) and a test keeps the two
identical.

| code | HTTP | exit | meaning |
| --- | --- | --- | --- |
`;
for (const [code, e] of Object.entries(ERROR_CODES)) out += `| \`${code}\` | ${e.status} | ${e.exit} | ${e.doc} |\n`;
out += `
CLI exit statuses: 0 success; 1 the awaited build or release did not succeed; 2 usage or bad input; 3
authentication or permission; 4 not found; 5 conflict; 6 rejected content; 7 server or connection failure.

Task failure reasons (\`reasonCode\` on tasks and builds) are a separate vocabulary reported by agents:
\`BUILD_FAILED\`, \`BUILD_TIMEOUT\`, \`BUILD_KILLED\`, \`BUILD_DISK_FULL\` (the sandbox's work folder reached its size
limit), \`BUILD_LOG_LIMIT\` (the log passed its limit and was cut), \`LOOKASIDE_PATH_UNSAFE\`, \`CANCELLED\`, \`NO_PACKAGES\`,
\`SRPM_MISSING\`, \`ARCH_EXCLUDED\`, \`LEASE_EXPIRED\`, \`AGENT_ERROR\` (build); \`ARTIFACT_DIGEST_MISMATCH\` (a package's bytes differ from the build
record: nothing is signed), \`KEY_NOT_FOUND\`, \`SIGN_FAILED\`, \`SIGNATURE_INVALID\`, \`UNSIGNED_PACKAGES\` (sign);
\`TESTS_FAILED\`, \`TEST_TIMEOUT\`, \`TEST_DISK_FULL\`, \`TEST_LOG_LIMIT\`, \`TEST_KILLED\` (test). Release failure reasons use the error codes above.
`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), out);
