/**
 * A terminal's Ctrl-C reaches its whole foreground process group. The llama.cpp server must not be in
 * it (a run drains its calls after Ctrl-C, on that server), and must still go when its parent does.
 * Needs the default model and xllamacpp (scripts/setup.sh), as the local-model integration test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait';
import { alive } from '../../src/shared/process';

const HOLDER = resolve(__dirname, '..', 'helpers', 'local-model-holder.ts');

/** Starts the holder as a terminal starts a foreground job: in a process group of its own. */
async function startHolder(then: 'stop' | 'exit') {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, then], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const lines = createInterface({ input: child.stdout });
  const next = async () =>
    JSON.parse(((await once(lines, 'line')) as [string])[0]) as Record<string, unknown>;
  const exited = once(child, 'exit');
  const started = (await next()) as { pid: number; url: string };
  return { child, next, exited, server: started.pid };
}

for (const then of ['stop', 'exit'] as const)
  test(
    `local model: Ctrl-C to the terminal's group leaves the model serving until its parent ${then === 'stop' ? 'stops it' : 'exits'}`,
    { timeout: 10 * 60_000 },
    async () => {
      const holder = await startHolder(then);
      try {
        assert.ok(alive(holder.server));
        process.kill(-holder.child.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
        assert.deepEqual(await holder.next(), { afterSigint: 200 }, 'the model still answers after Ctrl-C');
        await holder.exited;
        await waitFor(() => !alive(holder.server), 30_000, 'the model server to go with its parent');
      } finally {
        holder.child.kill('SIGKILL');
        if (alive(holder.server)) process.kill(holder.server, 'SIGKILL');
      }
    },
  );
