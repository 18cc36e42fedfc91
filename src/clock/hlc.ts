/**
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
 *
 * `l` tracks the largest wall time seen, `c` orders events that share an `l`. Local
 * events use `l' = max(l, pt)`; receiving a timestamp `m` uses `l' = max(l, m.l, pt)` with
 * the paper's counter rules. The result stays within the largest clock error of real time
 * while still ordering every causally related pair of events, which is what makes
 * Last-Write-Wins safe under clock skew: a write made after seeing another write always
 * carries a larger timestamp, however far behind the writer's wall clock is.
 */
import { InvalidOptionsError } from '../errors/index.js';
import { compareTimestamps, isNodeId, MAX_LOGICAL, MAX_RECORD_WALL_MS, MAX_WALL_MS, NODE_ID_PATTERN, type Timestamp } from './timestamp.js';

export interface ClockOptions {
  /**
   * Physical clock in milliseconds since the epoch. Inject a fake in tests.
   * @defaultValue `Date.now`
   */
  now: () => number;
  /**
   * Added to every physical reading; lets a demo or test run one node with a skewed clock.
   * Negative values put the node behind real time. Unit: milliseconds.
   * @defaultValue 0
   */
  clockOffsetMs: number;
  /**
   * A remote timestamp more than this far ahead of the local physical clock is counted as
   * a drift event and does **not** pull the local clock forward (see {@link HybridLogicalClock.observe}).
   * Unit: milliseconds.
   * @defaultValue 60000
   */
  maxDriftMs: number;
}

export const DEFAULT_CLOCK_OPTIONS: ClockOptions = Object.freeze({
  now: Date.now,
  clockOffsetMs: 0,
  maxDriftMs: 60_000,
});

/** What {@link HybridLogicalClock.observe} did with a remote timestamp. */
export interface ObserveResult {
  /** True when the remote timestamp was beyond `maxDriftMs` and the clock ignored it. */
  readonly drifted: boolean;
  /** How far the remote wall time is ahead of the local physical clock (ms, may be negative). */
  readonly aheadMs: number;
}

export class HybridLogicalClock {
  readonly nodeId: string;
  private readonly opts: ClockOptions;
  private l = 0;
  private c = 0;

  constructor(nodeId: string, options: Partial<ClockOptions> = {}) {
    if (!isNodeId(nodeId)) {
      throw new InvalidOptionsError('id', `node id ${JSON.stringify(nodeId)} must match ${NODE_ID_PATTERN} (letters, digits, "_" or "-")`);
    }
    this.nodeId = nodeId;
    this.opts = { ...DEFAULT_CLOCK_OPTIONS, ...options };
    if (!Number.isFinite(this.opts.clockOffsetMs)) throw new InvalidOptionsError('clockOffsetMs', 'must be a finite number of milliseconds');
    if (!(this.opts.maxDriftMs > 0)) throw new InvalidOptionsError('maxDriftMs', 'must be a positive number of milliseconds');
  }

  /** The physical clock as this node sees it (real clock plus `clockOffsetMs`). */
  physicalNow(): number {
    return Math.floor(this.opts.now() + this.opts.clockOffsetMs);
  }

  /** The latest timestamp issued or observed (the high-water mark). */
  get last(): Timestamp {
    return { wallMs: this.l, logical: this.c, nodeId: this.nodeId };
  }

  /** The configured drift bound in ms. */
  get maxDriftMs(): number {
    return this.opts.maxDriftMs;
  }

  /** A new timestamp for a local event; strictly greater than every earlier one of this clock. */
  now(): Timestamp {
    const pt = this.physicalNow();
    if (pt > this.l) {
      if (pt > MAX_WALL_MS) throw new RangeError('HLC wall time beyond year 9999; check the clock source');
      this.l = pt;
      this.c = 0;
    } else {
      this.bump();
    }
    return this.last;
  }

  /**
   * A new local timestamp strictly greater than both this clock's last one and `seen`.
   *
   * Used for a write that overwrites `seen`: the new write must win LWW against what it
   * replaced. When `seen` is within `maxDriftMs` the clock adopts it (normal HLC receive).
   * When `seen` is further ahead, the clock is left alone and the write gets the successor
   * of `seen` instead, so one far-future record cannot drag this node's clock (and through
   * it every other key) into the future, yet causality on this key still holds.
   *
   * The successor never passes {@link MAX_RECORD_WALL_MS}: over a record in the horizon's
   * very last step the write is stamped at the horizon's last timestamp with this node's
   * id. It may then lose LWW to an equal-time record of a node with a larger id, but the
   * write succeeds and LWW stays a total order, so the key stays writable and replicas
   * still converge.
   */
  after(seen: Timestamp): Timestamp {
    if (!this.observe(seen).drifted) return this.now();
    const ts = this.now();
    if (compareTimestamps(ts, seen) > 0) return ts;
    if (seen.logical < MAX_LOGICAL) return { wallMs: seen.wallMs, logical: seen.logical + 1, nodeId: this.nodeId };
    if (seen.wallMs < MAX_RECORD_WALL_MS) return { wallMs: seen.wallMs + 1, logical: 0, nodeId: this.nodeId };
    return { wallMs: MAX_RECORD_WALL_MS, logical: MAX_LOGICAL, nodeId: this.nodeId };
  }

  /**
   * Receive rule: merges a remote timestamp into the clock so later local timestamps order
   * after it. A timestamp more than `maxDriftMs` ahead of the local physical clock is not
   * merged (it is reported as `drifted`); records carrying it are still applied, so
   * convergence never depends on this choice, only on the total order of timestamps.
   */
  observe(remote: Timestamp): ObserveResult {
    const pt = this.physicalNow();
    const aheadMs = remote.wallMs - pt;
    if (aheadMs > this.opts.maxDriftMs) return { drifted: true, aheadMs };
    const l = Math.max(this.l, remote.wallMs, pt);
    if (l === this.l && l === remote.wallMs) this.c = Math.max(this.c, remote.logical) + 1;
    else if (l === this.l) this.c += 1;
    else if (l === remote.wallMs) this.c = remote.logical + 1;
    else this.c = 0;
    this.l = l;
    this.normalize();
    return { drifted: false, aheadMs };
  }

  /**
   * Restores the persisted high-water mark after a restart: every later timestamp is
   * greater than any timestamp with wall time `wallMs`, even if the wall clock went back.
   */
  restore(wallMs: number): void {
    if (wallMs + 1 > this.l) {
      this.l = wallMs + 1;
      this.c = 0;
    }
  }

  private bump(): void {
    this.c += 1;
    this.normalize();
  }

  /** The counter has a fixed width in the canonical string; overflow moves to the next ms. */
  private normalize(): void {
    if (this.c > MAX_LOGICAL) {
      this.l += 1;
      this.c = 0;
    }
    if (this.l > MAX_WALL_MS) throw new RangeError('HLC wall time beyond year 9999; check the clock source');
  }
}
