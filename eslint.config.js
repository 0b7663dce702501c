// Lint run by `npm test`. Two jobs, nothing else:
// 1. Promises: a promise that is neither awaited nor handed to something that handles its rejection
//    is an unhandled rejection waiting to crash the relay (type-aware rules, so it needs tsconfig.json).
// 2. The one-way data flow: intake → message → policies → spool → routing → delivery → outcome (and
//    notify). A stage file imports only core/, config/ and its own folder; only the conductors
//    (intake/receive.ts, delivery/dispatch.ts, delivery/attempt.ts), app.ts and cli/ wire stages;
//    ops/ is not a stage and is not checked.
//    The rule reads import specifiers as written; src/ uses relative paths only (no path aliases).
import tseslint from 'typescript-eslint';

const STAGES = ['intake', 'message', 'policies', 'spool', 'routing', 'delivery', 'outcome', 'notify'];
/** The files `smtp-sidecar sendmail` loads (src/main.ts imports cli/sendmail.ts lazily). */
const SENDMAIL_PATH = ['src/cli/sendmail.ts', 'src/cli/sendmail-message.ts', 'src/cli/smtp-submit.ts', 'src/cli/smtp-pipe.ts', 'src/cli/local-addresses.ts', 'src/cli/sysexits.ts'];
const CONDUCTORS = ['src/intake/receive.ts', 'src/delivery/dispatch.ts', 'src/delivery/attempt.ts'];

/** A relative import that leaves `up` folder levels and then enters anything but core/, config/ or the stage. */
function boundary(stage, up) {
  const climb = '\\.\\./'.repeat(up);
  return {
    regex: `^${climb}(?!(?:core|config|${stage})(?:/|$))`,
    caseSensitive: true,
    message: `a ${stage}/ file imports only core/, config/ and ${stage}/; wire stages in a conductor (intake/receive.ts, delivery/dispatch.ts, delivery/attempt.ts) or app.ts — see docs/ARCHITECTURE.md "Who may import whom".`,
  };
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // Files directly in the stage folder climb one level to leave it; files in a subfolder
  // (delivery/credentials/) climb two.
  ...STAGES.flatMap((stage) => [
    {
      files: [`src/${stage}/*.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns: [boundary(stage, 1)] }] },
    },
    {
      files: [`src/${stage}/*/**/*.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns: [boundary(stage, 2)] }] },
    },
  ]),
  { files: CONDUCTORS, rules: { 'no-restricted-imports': 'off' } },
  {
    // cron jobs and PHP's mail() start `sendmail` once per message: its module graph stays small
    // (config, the address helpers and a socket), never the relay's delivery machinery.
    files: SENDMAIL_PATH,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*/**', '!../config/**', '!../core/**', '!../delivery/open-socket.js', './send-test.js', './queue.js', './start.js', './validate*.js'],
              message: 'the sendmail command path loads only config/, core/, delivery/open-socket.ts and its own cli/ files: each cron or mail() call pays for every module it loads',
            },
          ],
        },
      ],
    },
  },
);
