/**
 * Anti-entropy and tombstone-collection series, registered in the node's own registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RoundReport } from './exchange.js';

export class AntiEntropyMetrics {
  readonly rounds: Counter<'peer' | 'result'>;
  readonly differences: Counter<'peer' | 'kind'>;
  readonly keysRepaired: Counter<'peer'>;
  readonly bytesRead: Counter<'peer'>;
  readonly lastRoundBytes: Gauge<'peer'>;
  readonly tombstonesPending: Gauge<'peer'>;
  readonly tombstonesCollected: Counter<string>;
  readonly digestFixes: Counter<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.rounds = new Counter({
      name: 'eventual_cache_anti_entropy_rounds_total',
      help: 'Anti-entropy exchanges with each peer, by result (equal, repaired, differs, incompatible, failed)',
      labelNames: ['peer', 'result'],
      registers,
    });
    this.differences = new Counter({
      name: 'eventual_cache_anti_entropy_differences_total',
      help: 'Differences found by exchanges with each peer: leaves differing at the first look (leaves), still differing at the second (confirmed_leaves), and the keys differing in those (keys, confirmed)',
      labelNames: ['peer', 'kind'],
      registers,
    });
    this.keysRepaired = new Counter({
      name: 'eventual_cache_anti_entropy_keys_repaired_total',
      help: 'Records of this node changed by anti-entropy, by the peer they were pulled from',
      labelNames: ['peer'],
      registers,
    });
    this.bytesRead = new Counter({
      name: 'eventual_cache_anti_entropy_bytes_read_total',
      help: "Bytes read from each peer's Redis by anti-entropy (digest and records)",
      labelNames: ['peer'],
      registers,
    });
    this.lastRoundBytes = new Gauge({
      name: 'eventual_cache_anti_entropy_last_round_bytes',
      help: "Bytes read from each peer's Redis by the last exchange with it",
      labelNames: ['peer'],
      registers,
    });
    this.tombstonesPending = new Gauge({
      name: 'eventual_cache_tombstones_pending',
      help: 'Tombstones and expired records past retention that each peer has not acknowledged yet (they wait)',
      labelNames: ['peer'],
      registers,
    });
    this.tombstonesCollected = new Counter({
      name: 'eventual_cache_tombstones_collected_total',
      help: 'Tombstones and expired records removed after retention and every peer acknowledged them',
      registers,
    });
    this.digestFixes = new Counter({
      name: 'eventual_cache_digest_fixes_total',
      help: 'Digest entries corrected by verification (a record changed outside the node, or a bug)',
      registers,
    });
  }

  /** Counts one exchange. */
  observe(report: RoundReport): void {
    const peer = report.peer;
    this.rounds.inc({ peer, result: report.result });
    if (report.differingLeaves > 0) this.differences.inc({ peer, kind: 'leaves' }, report.differingLeaves);
    if (report.confirmedLeaves > 0) this.differences.inc({ peer, kind: 'confirmed_leaves' }, report.confirmedLeaves);
    if (report.differingKeys > 0) this.differences.inc({ peer, kind: 'keys' }, report.differingKeys);
    if (report.confirmedKeys > 0) this.differences.inc({ peer, kind: 'confirmed' }, report.confirmedKeys);
    if (report.keysRepaired > 0) this.keysRepaired.inc({ peer }, report.keysRepaired);
    this.bytesRead.inc({ peer }, report.bytesRead);
    this.lastRoundBytes.set({ peer }, report.bytesRead);
  }
}
