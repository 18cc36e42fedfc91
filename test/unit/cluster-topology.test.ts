/**
 * The pure half of the Redis Cluster harness: parsing `CLUSTER NODES`, `INFO` and
 * `INFO commandstats`, and deciding whether a cluster is healthy.
 */
import { describe, expect, it } from 'vitest';
import { countCommands, diagnose, parseClusterNodes, parseInfo, slotCount, type NodeReport } from '../../src/local-redis/cluster-topology.js';

const M1 = 'a'.repeat(40);
const M2 = 'b'.repeat(40);
const M3 = 'c'.repeat(40);
const R1 = 'd'.repeat(40);

const NODES = [
  `${M1} 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [5461->-${M2}]`,
  `${M2} 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922`,
  `${M3} 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-16000 16001 16002-16383`,
  `${R1} 127.0.0.1:7004@17004 slave ${M1} 0 0 1 connected`,
  '',
].join('\n');

describe('parseClusterNodes', () => {
  it('should read ports, roles, masters, slot ranges and failure flags, ignoring migration markers', () => {
    const nodes = parseClusterNodes(NODES);
    expect(nodes.map((n) => [n.port, n.role, n.failing])).toEqual([
      [7001, 'master', false],
      [7002, 'master', false],
      [7003, 'master', true],
      [7004, 'replica', false],
    ]);
    expect(nodes[0]?.slots).toEqual([[0, 5460]]);
    expect(nodes[2]?.slots).toEqual([[10923, 16000], [16001, 16001], [16002, 16383]]);
    expect(nodes[3]).toMatchObject({ masterPort: 7001, slots: [] });
    expect(nodes.reduce((n, x) => n + slotCount(x.slots), 0)).toBe(16_384);
  });
});

describe('countCommands', () => {
  it('should add up calls, leaving out introspection and replication traffic', () => {
    const stats = [
      '# Commandstats',
      'cmdstat_set:calls=10,usec=1,usec_per_call=0.1,rejected_calls=0,failed_calls=0',
      'cmdstat_get:calls=5,usec=1',
      'cmdstat_cluster|nodes:calls=40,usec=1',
      'cmdstat_info:calls=40,usec=1',
      'cmdstat_replconf:calls=4,usec=1',
      'cmdstat_client|setname:calls=2,usec=1',
    ].join('\r\n');
    expect(countCommands(stats)).toBe(15);
    expect(countCommands(stats, [])).toBe(101);
  });
});

describe('diagnose', () => {
  const healthyView = parseClusterNodes(
    [
      `${M1} 127.0.0.1:7001@17001 master - 0 0 1 connected 0-5460`,
      `${M2} 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922`,
      `${M3} 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383`,
    ].join('\n'),
  );
  const report = (port: number, overrides: Partial<NodeReport> = {}): NodeReport => ({
    port,
    clusterInfo: parseInfo('cluster_state:ok\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:3\r\n'),
    view: healthyView,
    replication: parseInfo('# Replication\r\nrole:master\r\n'),
    ...overrides,
  });
  const expected = { nodes: 3, masters: 3 };

  it('should accept a cluster whose nodes agree and report ok', () => {
    expect(diagnose([report(7001), report(7002), report(7003)], expected)).toBeUndefined();
  });

  it('should name the node whose cluster_state is not ok', () => {
    const bad = report(7002, { clusterInfo: parseInfo('cluster_state:fail\ncluster_slots_ok:16384\ncluster_known_nodes:3') });
    expect(diagnose([report(7001), bad, report(7003)], expected)).toBe('7002: cluster_state:fail');
  });

  it('should see that a stopped node still serves slots (nobody noticed it died yet)', () => {
    expect(diagnose([report(7001), report(7002)], expected)).toBe('7001: stopped node 7003 still serves slots');
  });

  it('should see two nodes that disagree on who serves which slots', () => {
    const moved = healthyView.map((n) => (n.port === 7002 ? { ...n, slots: [[5461, 10921]] as Array<[number, number]> } : n));
    expect(diagnose([report(7001), report(7002, { view: moved }), report(7003)], expected)).toMatch(/^7002: slot owners .* differ from /);
  });

  it('should wait for a replica whose link is down or syncing', () => {
    const replica = (text: string) => report(7004, { replication: parseInfo(`role:slave\n${text}`), clusterInfo: parseInfo('cluster_state:ok\ncluster_slots_ok:16384\ncluster_known_nodes:4') });
    const four = { nodes: 4, masters: 3 };
    expect(diagnose([report(7001), report(7002), report(7003), replica('master_link_status:down\nmaster_sync_in_progress:0')], four)).toBe('7001: knows 3 of 4 nodes');
    const all = (r: NodeReport) => [r, ...[7001, 7002, 7003].map((p) => report(p, { clusterInfo: parseInfo('cluster_state:ok\ncluster_slots_ok:16384\ncluster_known_nodes:4') }))];
    expect(diagnose(all(replica('master_link_status:down\nmaster_sync_in_progress:0')), four)).toBe('7004: replica link down');
    expect(diagnose(all(replica('master_link_status:up\nmaster_sync_in_progress:1')), four)).toBe('7004: replica sync in progress');
    expect(diagnose(all(replica('master_link_status:up\nmaster_sync_in_progress:0')), four)).toBeUndefined();
  });
});
