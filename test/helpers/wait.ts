/** Polling for a state reached by other processes, with a bound that names what never happened. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor(
  predicate: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
