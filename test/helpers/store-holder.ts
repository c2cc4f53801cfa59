/**
 * A process that holds one output directory's store, as a storage worker does, driven over stdin by a
 * test: `append <id>` and `close`, one per line; it answers each with a JSON line on stdout.
 * Run as `node --import tsx store-holder.ts <dir> <hostname> <heartbeatMs>`: the hostname stands in for
 * another machine's, since a lock of another host is judged by its age, not its pid.
 */
import os from 'node:os';
import { createInterface } from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { JsonlStore } from '../../src/storage/jsonl-store';
import { testRecord } from './storage';

const [dir, host, heartbeat] = process.argv.slice(2);

async function main(): Promise<void> {
  // The store calls os.hostname() when it takes its lock and names itself in errors.
  Object.defineProperty(os, 'hostname', { value: () => host, configurable: true });
  const store = await JsonlStore.open(dir!, { lockHeartbeatMs: Number(heartbeat) });
  const say = (answer: object) => process.stdout.write(`${JSON.stringify(answer)}\n`);
  say({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, arg] = line.split(' ');
    if (command === 'append') {
      await store.appendDialogue(testRecord(arg!)).then(
        (result) => say({ status: result.status }),
        (error: Error) => say({ error: error.name, message: error.message }),
      );
    } else if (command === 'close') {
      await store.close();
      say({ closed: true });
      process.exit(0);
    }
  }
}

if (require.main === module) void main();

/** A holder process and a way to talk to it: each `ask` sends one command and resolves with its answer. */
export function startStoreHolder(
  dir: string,
  host: string,
  heartbeatMs: number,
): {
  child: ChildProcess;
  ready: Promise<unknown>;
  ask: (command: string) => Promise<Record<string, unknown>>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, dir, host, String(heartbeatMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const answers: ((answer: Record<string, unknown>) => void)[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => answers.shift()?.(JSON.parse(line) as Record<string, unknown>));
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      answers.push(resolve);
      child.once('exit', (code) => reject(new Error(`store holder exited (${code})`)));
    });
  const ready = next();
  return {
    child,
    ready,
    ask: (command) => {
      const answer = next();
      child.stdin.write(`${command}\n`);
      return answer;
    },
  };
}
