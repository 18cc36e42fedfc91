/**
 * The scenarios of the benchmark issue, in its order.
 */
import type { Scenario } from '../lib/scenario.js';
import { convergenceLagScenario } from './convergence-lag.js';
import { hotKeysScenario } from './hot-keys.js';
import { httpBatchScenario } from './http-batch.js';
import { httpScenario } from './http.js';
import { localWriteScenario } from './local-write.js';
import { memoryScenario } from './memory.js';
import { scaleScenario } from './scale.js';
import { antiEntropyScenario } from './anti-entropy.js';
import { replicatedThroughputScenario } from './replicated-throughput.js';
import { sustainedScenario } from './sustained.js';
import { outageScenario } from './outage.js';
import { clusterStoreScenario } from './cluster-store.js';

export const SCENARIOS: readonly Scenario[] = [localWriteScenario, replicatedThroughputScenario, convergenceLagScenario, hotKeysScenario, httpScenario, httpBatchScenario, memoryScenario, scaleScenario, sustainedScenario, outageScenario, antiEntropyScenario, clusterStoreScenario];
