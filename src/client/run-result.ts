/**
 * Waiting for a workflow's result (a run's, `judge DIR`'s) without a leak. `handle.result()` long-polls
 * the history (a call about every 20 s while the workflow goes on), and under
 * `client.withAbortSignal(signal)` the SDK adds an abort listener to `signal` for every call and never
 * removes it (`@temporalio/client` connection.js): one signal for a whole run held a listener and its
 * call per poll, thousands in a day, and Node printed a MaxListenersExceededWarning three minutes into
 * every run. Here each long poll for the close event has a signal of its own, fed by `stop`; the result
 * is read once the workflow has closed.
 */
import { temporal } from '@temporalio/proto';
import type { Client, WorkflowHandle } from '@temporalio/client';

const CLOSE_EVENT = temporal.api.enums.v1.HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;
const CONTINUED_AS_NEW = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW;

/** The result of the workflow behind `handle` (its latest run), or a rejection once `stop` aborts. */
export async function runResult<T>(client: Client, handle: WorkflowHandle, stop: AbortSignal): Promise<T> {
  await waitForClose(client, handle.workflowId, stop);
  // One call now that the run is closed: at most one listener left on `stop`.
  return (await client.withAbortSignal(stop, () => handle.result())) as T;
}

async function waitForClose(client: Client, workflowId: string, stop: AbortSignal): Promise<void> {
  for (;;) {
    stop.throwIfAborted();
    const call = new AbortController();
    const onStop = () => call.abort(stop.reason);
    stop.addEventListener('abort', onStop, { once: true });
    try {
      // No run id: the latest run, so a chain of continue-as-new is followed to its end.
      const { history } = await client.withAbortSignal(call.signal, () =>
        client.workflowService.getWorkflowExecutionHistory({
          namespace: client.options.namespace,
          execution: { workflowId },
          waitNewEvent: true,
          historyEventFilterType: CLOSE_EVENT,
          skipArchival: true,
        }),
      );
      const close = history?.events?.[0];
      if (close && close.eventType !== CONTINUED_AS_NEW) return;
    } finally {
      stop.removeEventListener('abort', onStop);
    }
  }
}
