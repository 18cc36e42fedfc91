import { describe, expect, it } from 'vitest';
import { KeyLocks } from '../../src/store/key-locks.js';

/** Resolves after every queued microtask and one macrotask turn. */
const settle = () => new Promise((r) => setImmediate(r));

describe('KeyLocks', () => {
  describe('.acquire', () => {
    it('should let transactions on disjoint keys run at the same time', async () => {
      const locks = new KeyLocks();
      const a = await locks.acquire(['x']);
      let bHeld = false;
      void locks.acquire(['y']).then(() => {
        bHeld = true;
      });
      await settle();
      expect(bHeld).toBe(true);
      a();
    });

    it('should queue overlapping transactions first come, first served', async () => {
      // t0: A takes {x}; B asks {x, y}; C asks {y}  →  B waits for A, C waits for B
      const locks = new KeyLocks();
      const order: string[] = [];
      const releaseA = await locks.acquire(['x']);
      const b = locks.acquire(['x', 'y']).then((release) => {
        order.push('B');
        return release;
      });
      const c = locks.acquire(['y']).then((release) => {
        order.push('C');
        return release;
      });
      await settle();
      expect(order).toEqual([]);
      releaseA();
      const releaseB = await b;
      await settle();
      expect(order).toEqual(['B']);
      releaseB();
      (await c)();
      expect(order).toEqual(['B', 'C']);
    });

    it('should forget keys once their last holder released', async () => {
      const locks = new KeyLocks();
      const first = await locks.acquire(['x', 'y']);
      const second = locks.acquire(['y']);
      first();
      (await second)();
      expect(locks.size).toBe(0);
    });
  });
});
