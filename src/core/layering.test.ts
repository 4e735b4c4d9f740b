import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layering of ARCHITECTURE.md, checked on the compiled sources: `core/`
 * imports no service, a service imports `core/` and nothing of another
 * service (they talk over HTTP), only `cli/` ties them together.
 */
const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return files(full);
    return e.name.endsWith('.js') ? [full] : [];
  });
}

test('core imports no service, and no service imports another', () => {
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const top = path.relative(SRC, file).split(path.sep)[0] ?? '';
    if (top === 'cli') continue;
    // A service's test harness may start the services it talks to (image tests need a real identity).
    if (/^testing\.[jt]s$/.test(path.basename(file)) || /\.test\.[jt]s$/.test(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), match[1] ?? ''));
      const targetTop = target.split(path.sep)[0] ?? '';
      if (targetTop === top || targetTop === 'core') continue;
      problems.push(`${path.relative(SRC, file)} imports ${target}`);
    }
  }
  assert.deepEqual(problems, []);
});
