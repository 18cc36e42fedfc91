/**
 * Summarises a V8 CPU profile (from `bench/profile.ts`, or any `node --cpu-prof` output):
 * self time by package or project file, the hottest functions, and the inclusive time of
 * this project's functions.
 */
import type { Profiler } from 'node:inspector';

type CallFrame = Profiler.ProfileNode['callFrame'];

function category(frame: CallFrame): string {
  if (!frame.url) return frame.functionName || '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (pkg) return pkg[1] as string;
  const src = /\/(src|bench)\/(.*)$/.exec(frame.url);
  if (src) return `${src[1]}/${src[2]}`;
  if (frame.url.startsWith('node:')) return 'node (internals)';
  return frame.url;
}

export function summarise(profile: Profiler.Profile): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.samples?.length ?? 1) / 1000;
  const self = new Map<number, number>();
  for (const id of profile.samples ?? []) self.set(id, (self.get(id) ?? 0) + interval);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byCategory = new Map<string, number>();
  const bySelf = new Map<string, number>();
  const inclusive = new Map<string, number>();
  // tsx compiles each file onto few lines, so line numbers would only add noise.
  const name = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${category(f)}`;
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id) as Profiler.ProfileNode;
    const key = name(node.callFrame);
    let sum = self.get(id) ?? 0;
    const cat = category(node.callFrame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + (self.get(id) ?? 0));
    bySelf.set(key, (bySelf.get(key) ?? 0) + (self.get(id) ?? 0));
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    for (const child of node.children ?? []) sum += walk(child, onStack);
    if (fresh) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
    }
    return sum;
  };
  walk(profile.nodes[0]?.id as number, new Set());
  const pct = (ms: number) => `${((ms / total) * 100).toFixed(1).padStart(5)}%`;
  const top = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true) =>
    [...m]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v)}  ${Math.round(v).toString().padStart(6)} ms  ${k}`)
      .join('\n');
  return [
    `sampled ${Math.round(total)} ms of CPU in this process`,
    'self time by package / file:',
    top(byCategory, 18),
    'hottest functions (self):',
    top(bySelf, 25),
    'inclusive time of this project\'s functions (src/):',
    top(inclusive, 25, (k) => k.includes(' src/')),
  ].join('\n');
}


/** Self time (ms) by package / project file, as in {@link summarise}. */
export function selfByCategory(profile: Profiler.Profile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.samples?.length ?? 1) / 1000;
  const out = new Map<string, number>();
  for (const id of profile.samples ?? []) {
    const node = byId.get(id);
    if (!node) continue;
    const cat = category(node.callFrame);
    out.set(cat, (out.get(cat) ?? 0) + interval);
  }
  return out;
}
