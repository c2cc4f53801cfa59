/**
 * A process that serves the local model as `generate` does, for tests of what a terminal's Ctrl-C does
 * to it. It prints `{"pid": <server pid>, "url": ...}` once the model is up; on SIGINT it asks the
 * model's /health (as a draining run would still call it), prints `{"afterSigint": <status or error>}`,
 * then stops the model (`stop`) or just exits (`exit`), as its argv says.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalModel } from '../../src/client/local-model';

async function main(): Promise<void> {
  const [then] = process.argv.slice(2);
  const model = await startLocalModel({
    contextPerSlot: 512,
    slots: 1,
    threads: 1,
    logFile: join(tmpdir(), `cc-local-holder-${process.pid}.log`),
  });
  const url = model.baseURL.replace(/\/v1$/, '');
  process.once('SIGINT', () => {
    void fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) })
      .then(
        (r) => r.status,
        (error: Error) => error.message,
      )
      .then(async (afterSigint) => {
        process.stdout.write(`${JSON.stringify({ afterSigint })}\n`);
        if (then === 'stop') await model.stop();
        process.exit(0);
      });
  });
  process.stdout.write(`${JSON.stringify({ pid: model.pid, url })}\n`);
}

void main();
