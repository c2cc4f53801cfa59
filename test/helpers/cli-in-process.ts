import { main } from '../../src/client/cli';

/**
 * Runs the CLI's `main` in this process, stderr captured: the same parsing and checks as the binary
 * without a process start each (for tables of bad-input cases). Only for commands that start nothing.
 */
export async function runCliInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'consistent-chat', ...args]);
    return { code, stderr };
  } finally {
    process.stderr.write = write;
    process.exitCode = undefined;
  }
}
