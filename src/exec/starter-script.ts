/**
 * The process starter's program (exec/exec.ts), in Python: its `subprocess` starts a command with vfork, which
 * copies no page tables, where Node forks its whole process. On the 2-core VMs process creation is serialised
 * across the cores (docs/benchmarks.md), so the start costs ~2 ms instead of Node's 8–17 ms, and does not
 * grow with the size of the process asking.
 *
 * Protocol: one JSON request a line on stdin, `{id, cmd, args, env, cwd?, timeout?, maxBuffer?, input?}`; one
 * JSON answer a line on stdout when the command has ended and closed its output, `{id, stdout, stderr, code,
 * signal, killed, overflow}` (overflow: the stream that went past maxBuffer), or `{id, spawnError, errno}` when
 * it could not start. Each command runs on a thread of its own; the starter exits when its stdin closes
 * (its parent is gone), leaving what is still running to finish.
 */
export const STARTER_PY = String.raw`
import errno, json, os, selectors, signal, subprocess, sys, threading, time

lock = threading.Lock()

def answer(a):
    line = json.dumps(a) + '\n'
    with lock:
        sys.stdout.write(line)
        sys.stdout.flush()

def feed(pipe, data):
    try:
        pipe.write(data)
    except OSError:
        pass
    finally:
        try:
            pipe.close()
        except OSError:
            pass

def run(r):
    rid = r['id']
    has_input = r.get('input') is not None
    try:
        p = subprocess.Popen([r['cmd'], *r['args']], cwd=r.get('cwd'), env=r['env'],
                             stdin=subprocess.PIPE if has_input else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        answer({'id': rid, 'spawnError': errno.errorcode.get(e.errno, 'EIO'), 'errno': e.errno or 0})
        return
    if has_input:
        threading.Thread(target=feed, args=(p.stdin, r['input'].encode()), daemon=True).start()
    limit = r.get('maxBuffer') or 1024 * 1024
    deadline = time.monotonic() + r['timeout'] / 1000 if r.get('timeout') else None
    bufs = {p.stdout: bytearray(), p.stderr: bytearray()}
    names = {p.stdout: 'stdout', p.stderr: 'stderr'}
    killed = False
    overflow = None
    sel = selectors.DefaultSelector()
    for f in bufs:
        sel.register(f, selectors.EVENT_READ)
    while sel.get_map():
        wait = None if deadline is None or killed else max(0.0, deadline - time.monotonic())
        ready = sel.select(wait)
        if deadline is not None and not killed and time.monotonic() >= deadline:
            p.send_signal(signal.SIGTERM)
            killed = True
        for key, _ in ready:
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = bufs[key.fileobj]
            room = limit - len(buf)
            if overflow is not None:
                continue
            if len(chunk) <= room:
                buf += chunk
                continue
            buf += chunk[:room]
            overflow = names[key.fileobj]
            if not killed:
                p.send_signal(signal.SIGTERM)
                killed = True
    sel.close()
    p.stdout.close()
    p.stderr.close()
    rc = p.wait()
    answer({'id': rid,
            'stdout': bufs[p.stdout].decode('utf-8', 'replace'),
            'stderr': bufs[p.stderr].decode('utf-8', 'replace'),
            'code': rc if rc >= 0 else None,
            'signal': signal.Signals(-rc).name if rc < 0 else None,
            'killed': killed and overflow is None,
            'overflow': overflow})

for line in sys.stdin:
    threading.Thread(target=run, args=(json.loads(line),), daemon=True).start()
`;
