/** Exit codes of every command (documented in the README). */
export const EXIT = {
  OK: 0,
  /** a runtime failure: cannot listen, a failed check, an upstream refused */
  FAILURE: 1,
  /** bad usage or an invalid configuration */
  USAGE_OR_CONFIG: 2,
} as const;
