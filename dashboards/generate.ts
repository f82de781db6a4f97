// Writes the generated dashboards, rule files and promtool tests.
//
//   npx tsx dashboards/generate.ts            regenerate into the repository
//   npx tsx dashboards/generate.ts --check    exit 1 when a committed file is stale
//   npx tsx dashboards/generate.ts --out DIR --runbook-base-url URL --job NAME
//                                             your own variant, outside the repository
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GENERATED_DIRS, renderAll, REPO_ROOT } from './render.js';
import { DEFAULT_RULES_CONFIG } from './rules/config.js';

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      check: { type: 'boolean', default: false },
      out: { type: 'string' },
      'runbook-base-url': { type: 'string' },
      job: { type: 'string' },
    },
  });
  const custom = values['runbook-base-url'] !== undefined || values.job !== undefined;
  if (custom && values.out === undefined)
    throw new Error(
      '--runbook-base-url and --job need --out: the committed files use the defaults',
    );
  const root = path.resolve(values.out ?? REPO_ROOT);
  const files = await renderAll({
    ...DEFAULT_RULES_CONFIG,
    ...(values['runbook-base-url'] !== undefined && { runbookBaseUrl: values['runbook-base-url'] }),
    ...(values.job !== undefined && { exporterJob: values.job }),
  });
  const wanted = new Set(files.map((f) => f.path));
  const stale: string[] = [];
  for (const f of files) {
    const target = path.join(root, f.path);
    const current = await readFile(target, 'utf8').catch(() => undefined);
    if (current === f.content) continue;
    stale.push(f.path);
    if (!values.check) {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, f.content);
    }
  }
  for (const dir of Object.values(GENERATED_DIRS))
    for (const name of await listDir(path.join(root, dir))) {
      const rel = `${dir}/${name}`;
      if (wanted.has(rel)) continue;
      stale.push(`${rel} (not generated any more)`);
      if (!values.check) await rm(path.join(root, rel));
    }
  if (values.check) {
    if (stale.length === 0) return 0;
    console.error(`stale, run \`npx tsx dashboards/generate.ts\`:\n  ${stale.join('\n  ')}`);
    return 1;
  }
  console.log(stale.length ? `wrote:\n  ${stale.join('\n  ')}` : 'up to date');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
