/** Bad input: `field` names the flag, option or file line at fault; the CLI prints it on one line and exits 2. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * A run that was closed without completing (cancelled, terminated, failed, timed out) and that an
 * output directory still names: Temporal keeps its id closed, so running it again cannot resume it.
 */
export class RunClosedError extends Error {
  constructor(
    readonly runId: string,
    /** Temporal's status name: `CANCELLED`, `TERMINATED`, `FAILED` or `TIMED_OUT`. */
    readonly status: string,
    readonly outDir: string,
  ) {
    super(
      `run ${runId} in ${outDir} was ${status.toLowerCase().replace('_', ' ')} and cannot be resumed; its records stay in ${outDir}. ` +
        `To generate again, start a new run in another output directory (a directory holds one run)`,
    );
    this.name = 'RunClosedError';
  }
}
