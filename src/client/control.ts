/** What a live run acknowledged after a control update, in one line. */
import type { RunControlState } from '../run/schemas';

/** `paused, concurrency 16 over 2 running intents (transaction 8, educational 8)` */
export function formatControlState(state: RunControlState): string {
  const shares = state.intents.map((i) => `${i.intent} ${i.concurrency}`).join(', ');
  const running = `${state.intents.length} running intent${state.intents.length === 1 ? '' : 's'}`;
  return `${state.paused ? 'paused' : 'running'}, concurrency ${state.concurrency} over ${running}${shares ? ` (${shares})` : ''}`;
}
