/**
 * What a process start costs on this machine, and whether starts on two cores run side by side (the pipeline's
 * floor, docs/benchmarks.md): the same work one at a time and as two at once, for a loop of plain computation
 * (the control), bash forks, and bash fork+exec of /bin/true; then one command started by Node directly (from a
 * process as large as an agent or the server), through Lenix's process starter (exec/exec.ts), and by Python.
 *
 *   npm run build && node dist/bench/process-starts.js [--starts 400]
 */
import { execFile, spawn } from 'node:child_process';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { execText, stopProcessStarter, useProcessStarter } from '../src/exec/exec.js';

const run = promisify(execFile);
const { values: args } = parseArgs({ options: { starts: { type: 'string', default: '400' } } });
const N = Math.max(50, Number(args.starts));

/** Wall seconds of `script` run by bash once, and as two copies at the same time. */
async function oneAndTwo(script: string): Promise<{ one: number; two: number }> {
  const time = async (copies: number) => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: copies }, () => run('bash', ['-c', script])));
    return (performance.now() - t0) / 1000;
  };
  const one = await time(1);
  const two = await time(2);
  return { one, two };
}

async function perCommand(name: string, start: () => Promise<unknown>): Promise<[string, number]> {
  await start();
  const t0 = performance.now();
  for (let i = 0; i < N / 4; i++) await start();
  return [name, (performance.now() - t0) / (N / 4)];
}

const rows: [string, { one: number; two: number }][] = [
  ['computation (no process starts)', await oneAndTwo(`x=0; for ((i=0;i<${N * 800};i++)); do x=$((x+i)); done`)],
  [`${N} forks of bash (a subshell each)`, await oneAndTwo(`for ((i=0;i<${N};i++)); do ( : ); done`)],
  [`${N} fork+exec of /bin/true`, await oneAndTwo(`for ((i=0;i<${N};i++)); do /bin/true; done`)],
];

// Node forks its whole process to start one: make this one as large as a busy agent (~250 MB resident).
const ballast = Array.from({ length: 200 }, () => Buffer.alloc(1 << 20, 1));
const timings: [string, number][] = [];
timings.push(
  await perCommand('Node spawn, ~250 MB process', () => new Promise((r) => spawn('/bin/true').on('exit', r))),
);
useProcessStarter();
timings.push(await perCommand("Lenix's process starter (Python, vfork)", () => execText('/bin/true', [])));
stopProcessStarter();
const { stdout: py } = await run('python3', [
  '-I',
  '-S',
  '-c',
  `import subprocess, time\nt = time.monotonic()\nfor i in range(${N / 4}): subprocess.run(['/bin/true'])\nprint((time.monotonic() - t) / ${N / 4} * 1000)`,
]);
timings.push(['Python subprocess.run (vfork)', Number(py.trim())]);

console.log(`\nProcess starts (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version})\n`);
console.log('| work | one at a time s | two at once s | two at once ÷ one |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, t] of rows)
  console.log(`| ${name} | ${t.one.toFixed(2)} | ${t.two.toFixed(2)} | ${(t.two / t.one).toFixed(2)} |`);
console.log(
  '\nTwice the work in the same time (ratio ≈ 1) means the cores run it side by side; ≈ 2, one after the other.\n',
);
console.log('| one command (/bin/true), started by | ms a command |');
console.log('| --- | ---: |');
for (const [name, ms] of timings) console.log(`| ${name} | ${ms.toFixed(1)} |`);
void ballast.length;
