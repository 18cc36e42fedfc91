/** The Redis `WAIT` behind `waitReplicas`: what runs right after a local commit's EXEC. */
import { ReplicaWaitError } from '../errors/index.js';
import type { TransactionConnection } from './connections.js';

/**
 * With `wanted` > 0: what runs right after a local commit's EXEC, on its connection. Redis
 * `WAIT` blocks until that many replicas have the connection's writes; fewer within
 * `timeoutMs` fail the batch's writes with {@link ReplicaWaitError}. It is never retried:
 * the batch is already committed. `undefined` when `wanted` is 0.
 */
export function replicaWait(wanted: number, timeoutMs: number): ((connection: TransactionConnection) => Promise<void>) | undefined {
  if (wanted === 0) return undefined;
  return async (connection) => {
    let acknowledged = 0;
    try {
      acknowledged = await connection.redis.wait(wanted, timeoutMs);
    } catch {
      // The master went away after EXEC: nobody can say the write is safe.
    }
    if (acknowledged < wanted) throw new ReplicaWaitError(acknowledged, wanted, timeoutMs);
  };
}
