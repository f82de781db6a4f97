// The committed dashboards, rule files and promtool tests must be exactly what the
// TypeScript sources generate today.
import { describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { GENERATED_DIRS, renderAll, REPO_ROOT } from '../../dashboards/render.js';

const HINT = 'stale: run `npx tsx dashboards/generate.ts` and commit the result';

describe('generated dashboards and rules', () => {
  it('are up to date, file by file', async () => {
    const files = await renderAll();
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const committed = await readFile(path.join(REPO_ROOT, f.path), 'utf8').catch(() => '');
      expect(committed, `${f.path} ${HINT}`).toBe(f.content);
    }
  });

  it('leave no file behind that is not generated any more', async () => {
    const wanted = new Set((await renderAll()).map((f) => f.path));
    for (const dir of Object.values(GENERATED_DIRS)) {
      const present = await readdir(path.join(REPO_ROOT, dir));
      for (const name of present)
        expect(wanted, `${dir}/${name} ${HINT}`).toContain(`${dir}/${name}`);
    }
  });
});
