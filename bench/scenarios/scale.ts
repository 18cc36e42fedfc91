/**
 * 7. Scale: scenario 2 repeated with 5 and 7 nodes, and with a large keyspace already
 * loaded on every node. The figure that should stay flat (±20%) is the cost of one write
 * reaching one peer: time to converge / (writes × peers), in µs. Every run verifies
 * convergence before it reports.
 *
 * All runs here update keys of a preloaded keyspace (the small one unless stated), so
 * the node-count rows and the keyspace row share their 3-node reference conditions.
 */
import type { BenchContext } from '../lib/context.js';
import { replicatedRun, type ReplicatedRunResult } from '../lib/replicated-run.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';

const FLAT = { kind: 'ratio-between', min: 0.8, max: 1.2 } as const;

function run(ctx: BenchContext, nodes: number, preload: number): Promise<ReplicatedRunResult> {
  const { writes } = ctx.sizes.scale;
  const { warmupWrites, concurrency } = ctx.sizes.replicated;
  return replicatedRun(ctx, { nodes, writes: Math.min(writes, preload), warmupWrites, concurrency, preload });
}

function summary(r: ReplicatedRunResult) {
  return { costUsPerWritePeer: Math.round(r.costUsPerWritePeer * 10) / 10, convergedWritesPerSec: Math.round(r.convergedWritesPerSec), ...r.details };
}

/** The run with the median cost per write per peer. */
function medianRun(rs: ReplicatedRunResult[]): ReplicatedRunResult {
  const sorted = [...rs].sort((a, b) => a.costUsPerWritePeer - b.costUsPerWritePeer);
  return sorted[Math.floor((sorted.length - 1) / 2)] as ReplicatedRunResult;
}

export const scaleScenario: Scenario = {
  id: 'scale',
  title: '7. Scale',
  async run(ctx) {
    const { nodeCounts, preload } = ctx.sizes.scale;
    const [small, large] = preload;
    // Node counts alternate within each round (3, 5, 7, 3, 5, 7, …) and each count keeps its
    // median-cost run, so a burst of load from elsewhere skews one run, not one side.
    const runs = new Map<number, ReplicatedRunResult[]>(nodeCounts.map((n) => [n, []]));
    for (let round = 1; round <= ctx.sizes.rounds; round++) {
      for (const nodes of nodeCounts) {
        const r = await run(ctx, nodes, small);
        const tag = ctx.sizes.rounds > 1 ? ` (round ${round}/${ctx.sizes.rounds})` : '';
        ctx.log(`${nodes} nodes${tag}: ${r.costUsPerWritePeer.toFixed(1)} µs per write per peer, ${Math.round(r.convergedWritesPerSec)} converged writes/s`);
        runs.get(nodes)?.push(r);
      }
    }
    const byNodes = new Map<number, ReplicatedRunResult>([...runs].map(([nodes, rs]) => [nodes, medianRun(rs)]));
    const reference = byNodes.get(nodeCounts[0] as number) as ReplicatedRunResult;
    const rows: ResultRow[] = [];
    for (const nodes of nodeCounts.slice(1)) {
      const r = byNodes.get(nodes) as ReplicatedRunResult;
      rows.push(
        row(`scale: cost per write per peer, ${nodes} vs ${reference.nodes} nodes`, {
          ours: r.costUsPerWritePeer,
          baseline: reference.costUsPerWritePeer,
          unit: 'µs/write/peer',
          target: FLAT,
          details: { [`${nodes} nodes`]: summary(r), [`${reference.nodes} nodes`]: summary(reference) },
        }),
      );
    }
    const big = await run(ctx, reference.nodes, large);
    ctx.log(`${large.toLocaleString('en-US')} keys: ${big.costUsPerWritePeer.toFixed(1)} µs per write per peer`);
    rows.push(
      row(`scale: cost per write per peer, ${large.toLocaleString('en-US')} vs ${small.toLocaleString('en-US')} keys loaded`, {
        ours: big.costUsPerWritePeer,
        baseline: reference.costUsPerWritePeer,
        unit: 'µs/write/peer',
        target: FLAT,
        details: { large: summary(big), small: summary(reference) },
      }),
    );
    return rows;
  },
};
