/**
 * Runs the test LLM server as its own process: `node --import tsx test/llm-server/cli.ts --port 0
 * --config '{"latency":{"meanMs":1000}}'`. Prints `{"url", "port"}` on one line when listening.
 */
import { parseArgs } from 'node:util';
import { startLlmServer, type LlmServerSettings } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, config: { type: 'string', default: '{}' } },
  });
  const options = JSON.parse(values.config) as LlmServerSettings;
  const server = await startLlmServer({ ...options, port: Number(values.port) });
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
