/** The problems of the ConfigError that `fn` throws (fails the test when it throws nothing or something else). */
import { ConfigError } from '../../src/config/load.js';

export function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
