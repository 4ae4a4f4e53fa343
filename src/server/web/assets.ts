import { createHash } from 'node:crypto';

/**
 * The web interface's only static files: one stylesheet and two small scripts (progressive enhancement: every
 * page works without them). Served with their digest in the URL and cached for ever.
 */
const CSS = `
:root { --fg: #1b1f24; --muted: #4d5661; --bg: #ffffff; --line: #d5dae0; --accent: #0b5cad; --ok: #116329; --bad: #a40e26; --warn: #7d4e00; --code: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #ffbf47; outline-offset: 1px; }
.skip { position: absolute; left: -9999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 9; }
header.site { display: flex; gap: 24px; align-items: center; padding: 10px 24px; border-bottom: 1px solid var(--line); background: #f7f9fb; flex-wrap: wrap; }
header.site .brand { font-weight: 700; font-size: 18px; color: var(--fg); text-decoration: none; }
nav.main ul { display: flex; gap: 16px; list-style: none; margin: 0; padding: 0; flex-wrap: wrap; }
header.site .who { margin-left: auto; color: var(--muted); }
main { padding: 16px 24px 48px; max-width: 1200px; }
footer.site { padding: 12px 24px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
h1 { font-size: 24px; margin: 8px 0 16px; } h2 { font-size: 18px; margin: 24px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: #f7f9fb; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: var(--code); padding: 12px; overflow: auto; white-space: pre-wrap; word-break: break-all; }
.state-succeeded, .state-published, .state-released, .state-current, .ok { color: var(--ok); font-weight: 600; }
.state-failed, .state-cancelled, .state-bad, .state-unreachable, .bad { color: var(--bad); font-weight: 600; }
.state-behind, .state-queued, .state-leased, .state-running, .state-building, .state-approved, .state-publishing, .state-draft { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
form.inline { display: inline; }
form.filters { display: flex; gap: 12px; flex-wrap: wrap; align-items: end; margin: 8px 0 16px; }
form.filters label, form.stack label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
input, select { font: inherit; padding: 4px 6px; border: 1px solid #8a949e; border-radius: 4px; color: var(--fg); background: #fff; }
button { font: inherit; padding: 4px 12px; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.pager { display: flex; gap: 16px; margin: 12px 0; }
#log { max-height: 70vh; min-height: 200px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; border: 1px solid currentColor; font-size: 12px; }
`;

/** Live log: follows the task over Server-Sent Events from the offset the page was rendered at. */
const LOG_JS = `
(function () {
  var pre = document.getElementById('log');
  if (!pre || !window.EventSource) return;
  var status = document.getElementById('log-status');
  var task = pre.getAttribute('data-task');
  var offset = Number(pre.getAttribute('data-end'));
  if (pre.getAttribute('data-finished') === '1') return;
  var atBottom = function () { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; };
  var MAX = 2000000;
  var es = new EventSource('/api/v1/tasks/' + task + '/log?follow=1&offset=' + offset);
  if (status) status.textContent = 'following live';
  es.addEventListener('log', function (e) {
    var d = JSON.parse(e.data);
    var stick = atBottom();
    pre.appendChild(document.createTextNode(d.text));
    // Keep up with large logs: only the tail stays in the page; the full log is a link away.
    if (pre.textContent.length > MAX) { pre.textContent = pre.textContent.slice(-MAX / 2); var t = document.getElementById('log-truncated'); if (t) t.hidden = false; }
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
  es.addEventListener('end', function (e) {
    var d = JSON.parse(e.data);
    if (status) status.textContent = 'task ' + d.state;
    es.close();
  });
  es.onerror = function () { if (status) status.textContent = 'reconnecting…'; };
})();
`;

/** Dashboard: refresh the page's live sections every few seconds without reloading. */
const DASH_JS = `
(function () {
  var live = document.querySelectorAll('[data-live]');
  if (!live.length || !window.fetch) return;
  setInterval(function () {
    fetch(location.href, { headers: { 'x-lenix-partial': '1' } }).then(function (r) { return r.text(); }).then(function (t) {
      var doc = new DOMParser().parseFromString(t, 'text/html');
      live.forEach(function (el) { var n = doc.getElementById(el.id); if (n) el.innerHTML = n.innerHTML; });
    }).catch(function () {});
  }, 3000);
})();
`;

function asset(body: string, type: string) {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { body, type, hash };
}

export const ASSETS = {
  'app.css': asset(CSS, 'text/css; charset=utf-8'),
  'log.js': asset(LOG_JS, 'text/javascript; charset=utf-8'),
  'dash.js': asset(DASH_JS, 'text/javascript; charset=utf-8'),
} as const;

export type AssetName = keyof typeof ASSETS;
export const assetUrl = (name: AssetName) => `/static/${ASSETS[name].hash}/${name}`;
