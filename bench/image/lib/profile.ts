import fs from 'node:fs';
import path from 'node:path';

/** Self time of one function in a V8 CPU profile. */
export interface ProfileEntry {
  function: string;
  /** Source file name and line (empty for native or V8-internal entries). */
  where: string;
  self_ms: number;
  /** Share of all non-idle samples, %. */
  pct: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * The functions with the most self time in the `.cpuprofile` files of a
 * directory (node --cpu-prof), idle time left out. Empty when there are none.
 */
export function summarizeProfiles(dir: string, top = 15): ProfileEntry[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    profile.samples.forEach((id, i) => {
      const frame = byId.get(id);
      const us = profile.timeDeltas[i] ?? 0;
      if (!frame || frame.functionName === '(idle)') return;
      const where = frame.url ? `${path.basename(frame.url)}:${frame.lineNumber + 1}` : '';
      const key = `${frame.functionName}|${where}`;
      const entry = self.get(key) ?? { fn: frame.functionName || '(anonymous)', where, us: 0 };
      entry.us += us;
      self.set(key, entry);
      total += us;
    });
  }
  return [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ function: e.fn, where: e.where, self_ms: Math.round(e.us / 1000), pct: total > 0 ? Math.round((1000 * e.us) / total) / 10 : 0 }));
}
