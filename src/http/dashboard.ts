/**
 * The Bull dashboard (bull-board) for the replication queues this node produces.
 *
 * Without a token anyone who can reach the port can look, so the queues are read-only
 * (no retry, pause, clean or add). With a token the whole dashboard is behind it, and
 * whoever gets in may act on the queues.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { ReplicaNode } from '../node/replica-node.js';

/** Where the dashboard is mounted. */
export const DASHBOARD_PATH = '/admin/queues';

/** bull-board over `node.queues`; `readOnly` disables every action on the queues. */
export function dashboardRouter(node: ReplicaNode, readOnly: boolean): Router {
  const serverAdapter = new ExpressAdapter().setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: node.queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: `eventual-cache ${node.id}` } },
  });
  return serverAdapter.getRouter() as Router;
}
