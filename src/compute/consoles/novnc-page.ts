/**
 * The console page the proxy serves at `/vnc_lite.html` (and `/vnc.html`,
 * `/vnc_auto.html`, the names Nova's URLs have used): a small page of our own
 * around noVNC's `RFB` class (`/core/rfb.js`, from the `@novnc/novnc`
 * package). Like noVNC's own pages it takes the websocket path from its
 * `path` parameter (where the console URL carries `?token=...`), and `host`,
 * `port`, `encrypt`, `password`, `view_only` and `scale` when given.
 */
export const NOVNC_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>noVNC console - Stratus</title>
<style>
  html, body { margin: 0; height: 100%; background: #222; color: #eee; font: 14px sans-serif; }
  body { display: flex; flex-direction: column; }
  #bar { display: flex; gap: 1em; align-items: center; padding: 4px 8px; background: #333; }
  #status { flex: 1; }
  #screen { flex: 1; overflow: hidden; }
  button { font: inherit; }
</style>
</head>
<body>
<div id="bar">
  <span id="status">Loading noVNC...</span>
  <button id="cad" type="button" disabled>Send Ctrl+Alt+Del</button>
</div>
<div id="screen"></div>
<script type="module">
import RFB from './core/rfb.js';

const params = new URLSearchParams(window.location.search);
const status = document.getElementById('status');
const cad = document.getElementById('cad');
const say = (text) => { status.textContent = text; };

const secure = params.has('encrypt') ? params.get('encrypt') !== '0' && params.get('encrypt') !== 'false' : window.location.protocol === 'https:';
const host = params.get('host') || window.location.hostname;
const port = params.get('port') || window.location.port;
let path = params.get('path') || 'websockify';
if (!path.startsWith('/')) path = '/' + path;
// Older console URLs carried the token as its own parameter.
if (params.has('token') && !path.includes('token=')) path += (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(params.get('token'));
const url = (secure ? 'wss' : 'ws') + '://' + (host.includes(':') ? '[' + host + ']' : host) + (port ? ':' + port : '') + path;

say('Connecting...');
let rfb;
try {
  rfb = new RFB(document.getElementById('screen'), url, { credentials: { password: params.get('password') || '' } });
} catch (err) {
  say('Could not connect: ' + err);
  throw err;
}
rfb.viewOnly = params.get('view_only') === 'true';
rfb.scaleViewport = params.get('scale') !== 'false';
let desktop = '';
rfb.addEventListener('connect', () => { say('Connected to ' + (desktop || 'the console')); cad.disabled = false; });
rfb.addEventListener('disconnect', (e) => { say(e.detail.clean ? 'Disconnected' : 'Connection closed (the console link is used once and expires: ask for a new one)'); cad.disabled = true; });
rfb.addEventListener('credentialsrequired', () => { const p = window.prompt('Password'); if (p !== null) rfb.sendCredentials({ password: p }); });
rfb.addEventListener('desktopname', (e) => { desktop = e.detail.name; document.title = desktop + ' - noVNC console'; });
cad.addEventListener('click', () => rfb.sendCtrlAltDel());
</script>
</body>
</html>
`;
