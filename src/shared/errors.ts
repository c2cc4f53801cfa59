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
