/**
 * Payloads shared by both sides of every comparison.
 */

/** A JSON string value whose JSON text is exactly `bytes` bytes (ASCII), varying with `seq`. */
export function valueOfBytes(seq: number, bytes: number): string {
  const head = `v${seq}-`;
  const inner = Math.max(0, bytes - 2);
  return (head + 'x'.repeat(Math.max(0, inner - head.length))).slice(0, inner);
}

/** `count` distinct keys drawn uniformly from `0..universe-1` (Floyd's algorithm; no full shuffle of a million). */
export function sampleDistinct(count: number, universe: number, random: () => number = Math.random): number[] {
  if (count > universe) throw new Error(`cannot draw ${count} distinct values from ${universe}`);
  const chosen = new Set<number>();
  for (let j = universe - count; j < universe; j++) {
    const t = Math.floor(random() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen];
}

/** A seeded PRNG (mulberry32) so both sides of a comparison draw the same keys. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
