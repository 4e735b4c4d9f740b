import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

test('environment overrides keep the type of the default, lists of numbers included', () => {
  const config = loadConfig({ env: { STRATUS_IMAGE__PORT: '9400', STRATUS_IMAGE__WEB_DOWNLOAD__ALLOWED_PORTS: '80, 8080', STRATUS_IMAGE__IMPORT_METHODS: 'glance-direct' } });
  assert.equal(config.image.port, 9400, 'a number stays a number');
  assert.deepEqual(config.image.web_download.allowed_ports, [80, 8080], 'a list of ports stays a list of numbers');
  assert.deepEqual(config.image.import_methods, ['glance-direct'], 'a list of strings stays a list of strings');
  assert.throws(() => loadConfig({ env: { STRATUS_IMAGE__WEB_DOWNLOAD__ALLOWED_PORTS: 'eighty' } }), ConfigError, 'a port that is not a number is refused');
});

test('image stores are a free mapping in the YAML file; unknown options are refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-config-'));
  const file = path.join(dir, 'stratus.yaml');
  fs.writeFileSync(file, 'image:\n  stores:\n    fast: { type: file, path: /srv/fast }\n    web: { type: http }\n  web_download:\n    allowed_ports: [8080]\n');
  const config = loadConfig({ file, env: {} });
  assert.deepEqual(Object.keys(config.image.stores), ['fast', 'web'], 'the stores are exactly those of the file');
  assert.deepEqual(config.image.web_download.allowed_ports, [8080], 'ports from YAML are numbers');
  fs.writeFileSync(file, 'image:\n  colour: blue\n');
  assert.throws(() => loadConfig({ file, env: {} }), /unknown option 'image.colour'/, 'a misspelt option is refused');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('STRATUS_SERVICES chooses the services up runs', () => {
  assert.deepEqual(loadConfig({ env: {} }).services, ['identity', 'image', 'network', 'placement', 'compute', 'volume', 'object'], 'all by default');
  assert.deepEqual(loadConfig({ env: { STRATUS_SERVICES: 'identity, image' } }).services, ['identity', 'image'], 'a comma-separated list');
});
