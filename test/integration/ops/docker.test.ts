/**
 * The Docker files, checked without a Docker engine: the Dockerfile's stages and runtime
 * settings, the files its COPY lines need, the compose example's sidecar layout and the
 * healthcheck command. The runtime stage's install (the packed tarball, npm install -g) is run
 * for real by install.test.ts, which is the production install.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { createHttpServer } from '../../../src/ops/http.js';
import { createMetrics } from '../../../src/ops/metrics.js';
import { buildReadiness } from '../../../src/ops/readiness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile → stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: from?.[1] ?? args, name: from?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, args });
    }
  }
  return stages;
}

const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
const one = (stage: Stage, keyword: string) => {
  const found = all(stage, keyword);
  expect(found, keyword).toHaveLength(1);
  return found[0]!;
};
/** COPY [--from=x] src... dest → sources (and the --from stage when given) */
function copySources(args: string): { from: string | undefined; sources: string[] } {
  const parts = args.split(/\s+/);
  const flags = parts.filter((p) => p.startsWith('--'));
  const rest = parts.filter((p) => !p.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: rest.slice(0, -1) };
}

const stages = parseDockerfile(read('Dockerfile'));
const build = stages.find((s) => s.name === 'build');
const runtime = stages.at(-1)!;
const compose = read('docker-compose.example.yml');

function ensureBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
    throw new Error('dist/main.js missing after the build');
  }
}

beforeAll(async () => {
  // `npm test` builds first (pretest); a direct vitest run may not have.
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) await run('npm', ['run', 'build'], { cwd: ROOT, timeout: 120_000 });
}, 130_000);

describe('Dockerfile', () => {
  it('builds in a node:22-bookworm-slim stage and runs from a second one', () => {
    expect(stages).toHaveLength(2);
    expect(build).toBeDefined();
    expect(build!.from).toBe('node:22-bookworm-slim');
    expect(runtime.from).toBe('node:22-bookworm-slim');
    expect(runtime).not.toBe(build);
    const buildRuns = all(build!, 'RUN').join('\n');
    expect(buildRuns).toMatch(/npm ci\b/);
    // npm pack runs prepack (the build) and bundles the runtime dependencies
    expect(buildRuns).toMatch(/npm pack\b/);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string>; bundleDependencies: unknown };
    expect(pkg.scripts['prepack']).toBe('npm run build');
    // every runtime dependency travels in the tarball (npm writes the list out; a new dependency must join it)
    const bundled = pkg.bundleDependencies === true ? Object.keys(pkg.dependencies) : (pkg.bundleDependencies as string[]);
    expect([...bundled].sort()).toEqual(Object.keys(pkg.dependencies).sort());
  });

  it('installs the packed tarball globally in the runtime stage, offline, as a production install does', () => {
    const runs = all(runtime, 'RUN').join('\n');
    expect(runs).toMatch(/npm install -g --offline .*\/tmp\/smtp-sidecar\.tgz/);
    expect(runs).not.toMatch(/npm run build|npm ci/);
    const copies = all(runtime, 'COPY').map(copySources);
    expect(copies).toContainEqual({ from: 'build', sources: ['/tmp/smtp-sidecar.tgz'] });
    expect(one(runtime, 'ENV')).toBe('NODE_ENV=production');
  });

  it('runs as a non-root user with the spool as a volume and ports 25 and 8025', () => {
    const user = one(runtime, 'USER');
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toBe('node');
    expect(one(runtime, 'VOLUME')).toBe('/var/spool/smtp-sidecar');
    expect(one(runtime, 'EXPOSE').split(/\s+/).sort()).toEqual(['25', '8025']);
    // the spool directory is created and handed to that user before the volume is declared
    const chown = runtime.instructions.findIndex((i) => i.keyword === 'RUN' && /chown node:node \/var\/spool\/smtp-sidecar/.test(i.args));
    const volume = runtime.instructions.findIndex((i) => i.keyword === 'VOLUME');
    expect(chown).toBeGreaterThanOrEqual(0);
    expect(chown).toBeLessThan(volume);
  });

  it('starts node directly (exec form) so SIGTERM reaches it, with the baked-in config', () => {
    expect(JSON.parse(one(runtime, 'ENTRYPOINT'))).toEqual(['smtp-sidecar']);
    expect(JSON.parse(one(runtime, 'CMD'))).toEqual(['start', '--config', '/etc/smtp-sidecar/config.json']);
    const configCopy = all(runtime, 'COPY').find((c) => c.endsWith(' /etc/smtp-sidecar/config.json'));
    expect(configCopy).toBe('docker/config.docker.json /etc/smtp-sidecar/config.json');
  });

  it('installs the sendmail command where cron, PHP and scripts look for it', () => {
    const runs = all(runtime, 'RUN').join('\n');
    expect(runs).toContain('ln -s /usr/local/lib/node_modules/smtp-sidecar/dist/main.js /usr/sbin/sendmail');
    expect(runs).toContain('ln -s /usr/local/lib/node_modules/smtp-sidecar/dist/main.js /usr/lib/sendmail');
  });

  it('checks health with `smtp-sidecar health` on the configured addresses (exec form, no curl)', () => {
    const healthcheck = one(runtime, 'HEALTHCHECK');
    const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    expect(command).toEqual(['smtp-sidecar', 'health', '--config', '/etc/smtp-sidecar/config.json']);
    expect(healthcheck).not.toMatch(/curl|wget|8025/);
  });

  it('has every COPY source the build context must provide, and .dockerignore keeps them', () => {
    ensureBuilt();
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const isIgnored = (path: string) => ignored.some((pattern) => path === pattern || path.startsWith(`${pattern}/`));
    for (const stage of stages) {
      for (const copy of all(stage, 'COPY').map(copySources)) {
        if (copy.from !== undefined) continue;
        for (const source of copy.sources) {
          expect(existsSync(join(ROOT, source)), source).toBe(true);
          expect(isIgnored(source), `${source} is excluded by .dockerignore`).toBe(false);
        }
      }
    }
    // what the runtime stage copies from the build stage exists after `npm run build`
    expect(existsSync(join(ROOT, 'dist', 'main.js'))).toBe(true);
    for (const kept of ['node_modules', 'dist', 'secrets', 'spool', '.git']) expect(ignored).toContain(kept);
  });

  it('the healthcheck command asks /healthz at the configured http.host (0.0.0.0 on loopback) and port: 0 when it answers, 1 when not', async () => {
    const healthcheck = one(runtime, 'HEALTHCHECK');
    const args = (JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[]).slice(1, -1); // health --config
    const server = createHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(),
      readiness: async () => buildReadiness({ listening: true, spoolWritable: true, upstreams: [] }),
    });
    const { port } = await server.listen();
    const dir = mkdtempSync(join(tmpdir(), 'smtp-sidecar-health-'));
    const config = join(dir, 'config.json');
    // the docker config with the HTTP port moved to the test server's
    const docker = JSON.parse(read('docker/config.docker.json')) as { http: { port: number } };
    writeFileSync(config, JSON.stringify({ ...docker, http: { ...docker.http, port } }));
    try {
      const healthy = await run(process.execPath, [join(ROOT, 'dist', 'main.js'), ...args, config], { timeout: 20_000 });
      expect(healthy.stdout).toContain(`healthy: http://127.0.0.1:${port}/healthz answered 200`);
      await server.close();
      await expect(run(process.execPath, [join(ROOT, 'dist', 'main.js'), ...args, config], { timeout: 20_000 })).rejects.toMatchObject({
        code: 1,
        stdout: expect.stringContaining('does not answer (ECONNREFUSED)'),
      });
    } finally {
      await server.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docker/config.docker.json', () => {
  const env = { M365_SENDER: 'relay@contoso.com', M365_TENANT_ID: 'tenant', M365_CLIENT_ID: 'client' };
  const text = read('docker/config.docker.json');

  it('is valid once its references resolve, listening on all container interfaces', () => {
    const files: string[] = [];
    const config = parseConfig(JSON.parse(text), {
      env,
      readFile: (path) => {
        files.push(path);
        return 'secret-from-file\n';
      },
    });
    expect(files).toEqual(['/run/secrets/m365_client_secret']);
    expect(config.listen).toMatchObject({ host: '0.0.0.0', port: 25 });
    expect(config.listen.allowedClients).toEqual(['127.0.0.0/8', '::1/128', '172.16.0.0/12', '10.0.0.0/8', '192.168.0.0/16']);
    expect(config.delivery.spoolDir).toBe('/var/spool/smtp-sidecar');
    expect(config.http).toMatchObject({ enabled: true, host: '0.0.0.0', port: 8025 });
    const auth = config.upstreams[0]?.auth;
    expect(auth?.type === 'oauth2' && auth.clientSecret).toBe('secret-from-file');
  });

  it('keeps secrets out of the file: each one is a ${file:/run/secrets/...} reference', () => {
    const raw = JSON.parse(text) as { upstreams: { auth: Record<string, string> }[] };
    for (const u of raw.upstreams) {
      for (const key of ['pass', 'clientSecret']) {
        if (u.auth[key] !== undefined) expect(u.auth[key]).toMatch(/^\$\{file:\/run\/secrets\/[a-z0-9_]+\}$/);
      }
    }
  });

  it('every ${env:...} it references is set in the compose example', () => {
    const names = [...text.matchAll(/\$\{env:([A-Z0-9_]+)\}/g)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const name of new Set(names)) expect(compose).toMatch(new RegExp(`^\\s+${name}:`, 'm'));
  });
});

describe('docker-compose.example.yml', () => {
  /** The indented block under `  <name>:` in the services section, comment lines dropped. */
  const service = (name: string) => {
    const match = new RegExp(`^  ${name}:\\n((?:    .*\\n|\\s*\\n)+)`, 'm').exec(compose);
    expect(match, name).not.toBeNull();
    return match![1]!
      .split('\n')
      .filter((line) => !/^\s*#/.test(line))
      .join('\n');
  };

  it('runs the relay from this build with the secret, the spool volume and the config mounted', () => {
    const relay = service('smtp-sidecar');
    expect(relay).toMatch(/^    build: \.$/m);
    expect(relay).toMatch(/^    secrets:\n      - m365_client_secret$/m);
    expect(relay).toMatch(/^      - spool:\/var\/spool\/smtp-sidecar$/m);
    expect(relay).toMatch(/^      - \.\/docker\/config\.docker\.json:\/etc\/smtp-sidecar\/config\.json:ro$/m);
    expect(relay).toMatch(/net\.ipv4\.ip_unprivileged_port_start: 0/);
  });

  it('puts the legacy app in the relay network namespace so it reaches localhost:25', () => {
    const app = service('legacy-app');
    expect(app).toMatch(/^    network_mode: "service:smtp-sidecar"$/m);
    expect(app).toContain('nc localhost 25');
  });

  it('declares the named volume and the secret file', () => {
    expect(compose).toMatch(/^volumes:\n  spool:/m);
    expect(compose).toMatch(/^secrets:\n  m365_client_secret:\n    file: \.\/secrets\/m365_client_secret\.txt$/m);
  });
});
