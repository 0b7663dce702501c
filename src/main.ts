#!/usr/bin/env node
/** bin entry: argv → command → exit code. No logic lives here. */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT } from './cli/exit-codes.js';
import { processIo } from './cli/io.js';
import { DEFAULT_CONFIG_PATH } from './config/load.js';
import { packageVersion } from './core/version.js';

const HELP = `Usage: smtp-sidecar <command> [options]

Commands:
  start      run the relay
  validate   check a config file (and with --connect, each upstream)
  encrypt    encrypt a secret from stdin for the config file (enc:...)
  send-test  send a test message through the upstreams (or --via a running relay)
  queue      list [--failed] | show QID | retry QID|--all | delete QID | requeue QID|--all | purge --failed
  sendmail   the sendmail command line (cron, PHP mail(), scripts): submit stdin to the relay
             (also what runs when this program is installed as /usr/sbin/sendmail)
  health     check that the configured relay answers (for healthchecks)

Every command reads ${DEFAULT_CONFIG_PATH} unless --config FILE names another.
Run "smtp-sidecar <command> --help" for the options of a command; --version prints the version.
Exit codes: 0 success, 1 runtime failure, 2 usage error or invalid config.
`;

async function main(argv: string[], invokedAs: string): Promise<number> {
  const io = processIo();
  // Run as /usr/sbin/sendmail (a symlink to this file): the whole argv is sendmail's.
  if (invokedAs === 'sendmail') return (await import('./cli/sendmail.js')).sendmailCommand(argv, io);
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') return io.stdout(`smtp-sidecar ${packageVersion()}\n`), EXIT.OK;
  // sendmail's options (-FCronDaemon, -oem, -t ...) are not ours: it parses its own argv.
  if (command === 'sendmail') return (await import('./cli/sendmail.js')).sendmailCommand(rest, io);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c', default: DEFAULT_CONFIG_PATH },
        connect: { type: 'boolean', default: false },
        pretty: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        to: { type: 'string' },
        from: { type: 'string' },
        upstream: { type: 'string' },
        via: { type: 'string' },
        json: { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        failed: { type: 'boolean', default: false },
        'older-than': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: command === 'queue',
      strict: true,
    });
  } catch (err) {
    io.stderr(`smtp-sidecar: ${(err as Error).message}\n\n${HELP}`);
    return EXIT.USAGE_OR_CONFIG;
  }
  const { values, positionals } = parsed;
  switch (command) {
    case 'start': {
      const { START_HELP, startCommand } = await import('./cli/start.js');
      if (values.help) return io.stdout(START_HELP), EXIT.OK;
      return startCommand({ config: values.config, pretty: values.pretty, watch: values.watch }, io);
    }
    case 'validate': {
      const { VALIDATE_HELP, validateCommand } = await import('./cli/validate.js');
      if (values.help) return io.stdout(VALIDATE_HELP), EXIT.OK;
      return validateCommand({ config: values.config, connect: values.connect }, io, (await import('./cli/validate-connect.js')).connectCheck());
    }
    case 'send-test': {
      const { SEND_TEST_HELP, sendTestCommand } = await import('./cli/send-test.js');
      if (values.help) return io.stdout(SEND_TEST_HELP), EXIT.OK;
      return sendTestCommand({ config: values.config, to: values.to, from: values.from, upstream: values.upstream, via: values.via }, io);
    }
    case 'queue': {
      const { QUEUE_HELP, queueCommand } = await import('./cli/queue.js');
      if (values.help) return io.stdout(QUEUE_HELP), EXIT.OK;
      return queueCommand({ config: values.config, args: positionals, json: values.json, all: values.all, failed: values.failed, olderThan: values['older-than'] }, io);
    }
    case 'encrypt': {
      const { ENCRYPT_HELP, encryptCommand } = await import('./cli/encrypt.js');
      if (values.help) return io.stdout(ENCRYPT_HELP), EXIT.OK;
      return encryptCommand(io);
    }
    case 'health': {
      const { HEALTH_HELP, healthCommand } = await import('./cli/health.js');
      if (values.help) return io.stdout(HEALTH_HELP), EXIT.OK;
      return healthCommand({ config: values.config }, io);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(HELP);
      return command === undefined ? EXIT.USAGE_OR_CONFIG : EXIT.OK;
    default:
      io.stderr(`smtp-sidecar: unknown command "${command}"\n\n${HELP}`);
      return EXIT.USAGE_OR_CONFIG;
  }
}

main(process.argv.slice(2), basename(process.argv[1] ?? '')).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`smtp-sidecar: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT.FAILURE;
  },
);
