/**
 * The process starter's program (exec/exec.ts), in Python: its `subprocess` starts a command with vfork, which
 * copies no page tables, where Node forks its whole process. On the 2-core VMs process creation is serialised
 * across the cores (docs/benchmarks.md), so the start costs ~2 ms instead of Node's 8–17 ms, and does not
 * grow with the size of the process asking.
 *
 * Protocol: one JSON request a line on stdin, one JSON answer a line on stdout; `{ready: true}` first, once it
 * listens on its socket (below), or `{ready: false}` if it cannot.
 * - A command run for its output, `{id, cmd, args, env, cwd?, timeout?, maxBuffer?, input?}`: answered when it
 *   has ended and closed its output, `{id, stdout, stderr, code, signal, killed, overflow}` (overflow: the
 *   stream that went past maxBuffer).
 * - A process started with file descriptors of its parent's choosing (the sandboxes), `{op: 'start', id, cmd,
 *   args, env, pipes, ignore, detached}`: each fd in `pipes` is a connection the parent opened to the starter's
 *   socket (the abstract Unix socket named by argv[1]), which begins with a 16-byte line "ID FD"; the starter
 *   takes only connections from its parent process (SO_PEERCRED), waits for all of a start's, and starts the
 *   process with posix_spawn (vfork) with them as those fds, /dev/null on `ignore` ones below 3, in a session of its
 *   own when `detached`. Answers `{id, pid}`, then `{id, exited, code, signal}` once it has exited.
 * Either answers `{id, spawnError, errno}` when the process could not start. Each request runs on a thread of its
 * own, which waits for its process: bubblewrap's --die-with-parent follows that thread. The starter exits when
 * its stdin closes (its parent is gone); what it started with --die-with-parent goes with it.
 */
export const STARTER_PY = String.raw`
import errno, fcntl, json, os, selectors, shutil, signal, socket, struct, subprocess, sys, threading, time

lock = threading.Lock()

def answer(a):
    line = json.dumps(a) + '\n'
    with lock:
        sys.stdout.write(line)
        sys.stdout.flush()

def signal_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return 'SIG%d' % n

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
            'signal': signal_name(-rc) if rc < 0 else None,
            'killed': killed and overflow is None,
            'overflow': overflow})

arrived = threading.Condition()
connections = {}
# sun_path holds 108 bytes on Linux.
socket_path_max = 108

def listen(name):
    # Node connects to an abstract name either padded with NULs to the whole sun_path (libuv before 1.48) or
    # not (later ones): listen on both.
    try:
        servers = []
        for n in (name, name.ljust(socket_path_max, '\0')):
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(n)
            srv.listen(128)
            servers.append(srv)
    except OSError:
        # Commands still run; processes with streams then start without the starter.
        answer({'ready': False})
        return
    threading.Thread(target=take, args=(servers[1],), daemon=True).start()
    answer({'ready': True})
    take(servers[0])

def take(srv):
    parent = os.getppid()
    while True:
        c, _ = srv.accept()
        try:
            pid, _, _ = struct.unpack('3i', c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))
            if pid != parent:
                raise ValueError('not the parent')
            c.settimeout(10)
            head = b''
            while len(head) < 16:
                more = c.recv(16 - len(head))
                if not more:
                    raise ValueError('short header')
                head += more
            sid, fd = (int(x) for x in head.split())
            c.settimeout(None)
        except (OSError, ValueError):
            c.close()
            continue
        with arrived:
            connections.setdefault(sid, {})[fd] = c
            arrived.notify_all()

def start(r):
    rid = r['id']
    want = set(r['pipes'])
    with arrived:
        ok = arrived.wait_for(lambda: want <= set(connections.get(rid, {})), timeout=30)
        socks = connections.pop(rid, {})
    env = r['env']
    cmd = r['cmd']
    high = []
    try:
        if not ok:
            raise OSError(errno.ETIMEDOUT, 'the connections for the process did not come')
        exe = cmd if '/' in cmd else shutil.which(cmd, path=env.get('PATH', os.defpath))
        if exe is None:
            raise OSError(errno.ENOENT, cmd)
        # Each connection to its fd, from a copy above every fd asked for (so none is its own target).
        floor = max([*want, *r['ignore'], 2]) + 1
        actions = []
        for n, s in socks.items():
            h = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, floor)
            high.append(h)
            actions.append((os.POSIX_SPAWN_DUP2, h, n))
        # As Node's spawn: /dev/null on an ignored 0, 1 or 2; a higher one is left closed (nothing else is inherited).
        for n in r['ignore']:
            if n <= 2:
                actions.append((os.POSIX_SPAWN_OPEN, n, '/dev/null', os.O_RDWR, 0))
        pid = os.posix_spawn(exe, [cmd, *r['args']], env, file_actions=actions, setsid=bool(r.get('detached')))
    except OSError as e:
        answer({'id': rid, 'spawnError': errno.errorcode.get(e.errno or 0, 'EIO'), 'errno': e.errno or 0})
        return
    finally:
        for h in high:
            os.close(h)
        for s in socks.values():
            s.close()
    answer({'id': rid, 'pid': pid})
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    answer({'id': rid, 'exited': True, 'code': rc if rc >= 0 else None,
            'signal': signal_name(-rc) if rc < 0 else None})

threading.Thread(target=listen, args=('\0' + sys.argv[1],), daemon=True).start()
def guarded(fn, r):
    # Whatever goes wrong, the request gets an answer (a start already answered with its pid then ends killed).
    try:
        fn(r)
    except Exception as e:
        sys.stderr.write('lenix process starter: %s: %r\n' % (r.get('cmd'), e))
        answer({'id': r.get('id'), 'spawnError': 'EIO', 'errno': errno.EIO})

for line in sys.stdin:
    r = json.loads(line)
    threading.Thread(target=guarded, args=(start if r.get('op') == 'start' else run, r), daemon=True).start()
`;
