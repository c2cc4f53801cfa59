import { proxyActivities } from '@temporalio/workflow';

const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '1 minute' });

/** Runs `n` no-op activities one after another. */
export async function sequentialNoops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await noop();
}

/** Runs `n` no-op activities, `window` of them at a time: Temporal's own ceiling on activities/s. */
export async function windowedNoops(n: number, window: number): Promise<void> {
  await inLanes(n, window, () => noop());
}

/** Runs `work` `n` times, at most `lanes` at once. */
async function inLanes(n: number, lanes: number, work: () => Promise<unknown>): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started++;
      await work();
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, n) }, lane));
}

/** One stand-in LLM call: waits `ms`, returns `bytes` of text; `input` pads the input as a prompt does. */
export interface ShapedCall {
  ms: number;
  bytes: number;
  input: string;
}

const PROMPT = 'p'.repeat(6_000);
const jitter = (mean: number) => Math.round(mean * (0.75 + Math.random() / 2));

/** A dialogue's two calls as the streams scenario makes them: a short skeleton, then a long responses call. */
const dialogueCalls = (): [ShapedCall, ShapedCall] => [
  { ms: jitter(1_300), bytes: 500, input: PROMPT },
  { ms: jitter(3_000), bytes: 3_500, input: PROMPT },
];

const { shapedCall } = proxyActivities<{ shapedCall(call: ShapedCall): Promise<string> }>({
  startToCloseTimeout: '1 minute',
});

/**
 * `dialogues` dialogues, `lanes` at a time, each two calls in a row shaped like the streams scenario's
 * (their lengths, inputs and replies the same sizes): what Temporal alone costs per call at that shape,
 * with no LLM reply to read.
 */
export async function dialogueShapedNoops(dialogues: number, lanes: number): Promise<void> {
  await inLanes(dialogues, lanes, async () => {
    const [skeleton, responses] = dialogueCalls();
    await shapedCall(skeleton);
    await shapedCall(responses);
  });
}

const { shapedDialogue } = proxyActivities<{ shapedDialogue(calls: ShapedCall[]): Promise<string> }>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
});

/**
 * The same work with both calls of a dialogue in one activity that heartbeats the first call's reply as
 * a checkpoint between them: the other shape issue 24 proposed.
 */
export async function dialogueShapedOneActivity(dialogues: number, lanes: number): Promise<void> {
  await inLanes(dialogues, lanes, () => shapedDialogue(dialogueCalls()));
}
