/**
 * A wall clock that only moves when a test moves it: it can stand still (every reading in
 * the same millisecond) or step backwards (an NTP correction, a restart on another host).
 */

/** 2026-11-23T21:55:09.123Z: a fixed, realistic epoch so timestamps read well in failures. */
export const T0 = Date.UTC(2026, 10, 23, 21, 55, 9, 123);

export class FakeClock {
  ms: number;

  constructor(ms: number = T0) {
    this.ms = ms;
  }

  /** Pass this as `ClockOptions.now`; bound so it can be handed around on its own. */
  readonly now = (): number => this.ms;

  advance(ms: number): void {
    this.ms += ms;
  }

  set(ms: number): void {
    this.ms = ms;
  }
}

/** A clock that returns the given readings in order, then repeats the last one. */
export function scriptedClock(readings: readonly number[]): () => number {
  let i = 0;
  return () => {
    const reading = readings[Math.min(i, readings.length - 1)];
    i += 1;
    if (reading === undefined) throw new Error('scriptedClock needs at least one reading');
    return reading;
  };
}

/** Small deterministic PRNG (mulberry32) so fast-check can replay delivery orders from a seed. */
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

/** Fisher-Yates shuffle of a copy, driven by `random`. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
