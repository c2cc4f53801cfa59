/** The worker-side bound on a run's LLM calls in flight (src/activities/run-gate.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunGates, type GateSlot } from '../../src/activities/run-gate';

const never = new AbortController().signal;
const noop = () => undefined;
/** Lets every settled promise run its callbacks. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('run gate', () => {
  test('run gate: admits up to the limit, then one waiter per released slot, first come first served', async () => {
    const gates = new RunGates();
    const held = await Promise.all([1, 2, 3].map(() => gates.acquire('run', 3, 0, never, noop)));
    const admitted: number[] = [];
    const waiting = [4, 5, 6].map((n) =>
      gates.acquire('run', 3, 0, never, noop).then((slot) => {
        admitted.push(n);
        return slot;
      }),
    );
    await settle();
    assert.deepEqual(admitted, [], 'nobody passes a full gate');
    assert.deepEqual(gates.state('run'), { limit: 3, holders: 3, waiting: 3 });
    held[1]!.release();
    held[1]!.release(); // a second release of the same slot frees nothing more
    await settle();
    assert.deepEqual(admitted, [4]);
    held[0]!.release();
    held[2]!.release();
    await settle();
    assert.deepEqual(admitted, [4, 5, 6]);
    for (const slot of await Promise.all(waiting)) slot.release();
    assert.equal(gates.state('run'), undefined, 'an idle gate is forgotten');
  });

  test('run gate: runs do not share slots', async () => {
    const gates = new RunGates();
    const a = await gates.acquire('run-a', 1, 0, never, noop);
    const b = await gates.acquire('run-b', 1, 0, never, noop);
    assert.deepEqual(gates.state('run-a'), { limit: 1, holders: 1, waiting: 0 });
    assert.deepEqual(gates.state('run-b'), { limit: 1, holders: 1, waiting: 0 });
    a.release();
    b.release();
  });

  test('run gate: a newer activity’s limit applies at once; an older one’s does not undo it', async () => {
    const gates = new RunGates();
    const first = await gates.acquire('run', 1, 100, never, noop);
    let second: GateSlot | undefined;
    void gates.acquire('run', 1, 100, never, noop).then((s) => (second = s));
    await settle();
    assert.equal(second, undefined);
    // The run's concurrency was raised: an activity scheduled later carries the new limit and lets the waiter in.
    const third = await gates.acquire('run', 3, 200, never, noop);
    await settle();
    assert.ok(second, 'the waiter was admitted when the limit rose');
    assert.deepEqual(gates.state('run'), { limit: 3, holders: 3, waiting: 0 });
    // A retry of an activity scheduled before the change still carries the old limit: it is ignored.
    let fourth: GateSlot | undefined;
    void gates.acquire('run', 1, 150, never, noop).then((s) => (fourth = s));
    await settle();
    assert.equal(gates.state('run')?.limit, 3);
    assert.equal(fourth, undefined, 'three holders fill a limit of 3');
    first.release();
    await settle();
    assert.ok(fourth);
    for (const slot of [second, third, fourth]) slot.release();
  });

  test('run gate: a cancelled waiter leaves the queue and is never admitted; waiting heartbeats', async () => {
    const gates = new RunGates();
    const holder = await gates.acquire('run', 1, 0, never, noop);
    const cancel = new AbortController();
    let beats = 0;
    const waiter = gates.acquire('run', 1, 0, cancel.signal, () => beats++);
    await new Promise((r) => setTimeout(r, 1_100));
    assert.ok(beats >= 1, 'a waiting activity heartbeats');
    cancel.abort(new Error('activity cancelled'));
    await assert.rejects(waiter, /activity cancelled/);
    assert.deepEqual(gates.state('run'), { limit: 1, holders: 1, waiting: 0 });
    holder.release();
    assert.equal(gates.state('run'), undefined);
    await assert.rejects(gates.acquire('run', 1, 0, cancel.signal, noop), /activity cancelled/);
  });
});
