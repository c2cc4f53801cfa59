import { main } from '../../src/client/cli';

/**
 * Runs the CLI's `main` in this process, stderr captured: the same parsing and checks as the binary
 * without a process start each (for tables of bad-input cases). Only for commands that start nothing.
 */
export async function runCliInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const stream = process.stderr;
  const write = stream.write.bind(stream);
  let stderr = '';
  stream.write = (chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  };
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'consistent-chat', ...args]);
    return { code, stderr };
  } finally {
    stream.write = write;
    process.exitCode = undefined;
  }
}
