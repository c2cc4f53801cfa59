/**
 * How an intent shows its progress: details on its page in the UI, and reports to its run, whose own
 * `progress` query learns the intents' numbers from them.
 */
import { getExternalWorkflowHandle, patched, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { IntentProgress } from '../../run/schemas';
import { intentReportSignal } from '../../run/messages';
import { PATCHES } from '../patches';
import { type Books, finishedDialogues } from './books';

/** Progress reports one intent sends its run over its whole life. */
export const MAX_PROGRESS_REPORTS = 100;
/**
 * Least time between two progress reports of an intent: each costs the intent a command and the run a
 * signal and a workflow task. At 2 s, nine intents' reports were 8% of a fast run's history events;
 * the CLI's progress view asks the intents directly, so only the run's own query waits longer.
 */
export const MIN_REPORT_INTERVAL_MS = 5_000;
/** The interval of runs that started before `report-interval-5s`. */
const MIN_REPORT_INTERVAL_MS_BEFORE = 2_000;

export interface ProgressReporter {
  /** Keeps the UI's details current (no command). */
  showDetails: () => void;
  /** After a dialogue finished: shows it, and reports to the run when a report is due. */
  finished: () => void;
  /** The last dialogue has started: the run stops giving this intent a share (one report more, ever). */
  lastStarted: () => void;
}

/**
 * One report every `reportEvery` finished dialogues and `MIN_REPORT_INTERVAL_MS`, at most
 * `MAX_PROGRESS_REPORTS` over the whole intent (continue-as-new included), so the run's history stays
 * bounded however many dialogues there are.
 */
export function progressReporter(
  books: Books,
  planned: number,
  snapshot: (status: IntentProgress['status']) => IntentProgress,
): ProgressReporter {
  const parent = workflowInfo().parent;
  const reportEvery = Math.max(1, Math.ceil(planned / MAX_PROGRESS_REPORTS));
  let lastReportAt = 0;
  const showDetails = () =>
    setCurrentDetails(
      `${books.written}/${planned} written · ${books.failed} failed · ${books.llmCalls} calls · ${books.promptTokens + books.completionTokens} tokens`,
    );
  const send = () => {
    if (!parent) return;
    lastReportAt = Date.now();
    books.reportedDone = finishedDialogues(books);
    getExternalWorkflowHandle(parent.workflowId, parent.runId)
      .signal(intentReportSignal, snapshot('running'))
      .catch(() => undefined); // the run may be gone (cancelled); the report was only a courtesy
  };
  return {
    showDetails,
    finished() {
      showDetails();
      const reported = books.reportedDone ?? 0;
      if (!parent || Math.floor(finishedDialogues(books) / reportEvery) <= Math.floor(reported / reportEvery))
        return;
      if (!patched(PATCHES.intentReportsProgress)) return;
      // Workflow time: the same on replay.
      if (patched(PATCHES.reportInterval)) {
        const interval = patched(PATCHES.reportInterval5s)
          ? MIN_REPORT_INTERVAL_MS
          : MIN_REPORT_INTERVAL_MS_BEFORE;
        if (Date.now() - lastReportAt < interval) return;
      }
      send();
    },
    lastStarted() {
      if (parent && patched(PATCHES.finishingIntents)) send();
    },
  };
}
