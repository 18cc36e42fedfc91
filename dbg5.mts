import { createHash, hash } from 'node:crypto';
const s = '1|2026-12-04T03:35:00.000Z/000000/w1|w1:1||v|' + '"' + 'x'.repeat(100) + '"';
const N = 200000;
let t = performance.now(); for (let i = 0; i < N; i++) createHash('sha1').update('key-' + i).update('\0').update(s).digest(); console.log('createHash sha1', ((performance.now() - t) * 1000 / N).toFixed(3), 'µs');
t = performance.now(); for (let i = 0; i < N; i++) (hash as any)('sha1', 'key-' + i + '\0' + s, 'buffer'); console.log('hash sha1', ((performance.now() - t) * 1000 / N).toFixed(3), 'µs');
t = performance.now(); for (let i = 0; i < N; i++) (hash as any)('md5', 'key-' + i + '\0' + s, 'buffer'); console.log('hash md5', ((performance.now() - t) * 1000 / N).toFixed(3), 'µs');
function fnv(str: string, h: number) { for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 0x01000193); } return h >>> 0; }
t = performance.now(); for (let i = 0; i < N; i++) { const x = 'key-' + i + '\0' + s; fnv(x, 0x811c9dc5); fnv(x, 0x12345678); } console.log('fnv x2', ((performance.now() - t) * 1000 / N).toFixed(3), 'µs');
