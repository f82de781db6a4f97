// Shared by test/unit/deploy-*.test.ts: builds deploy/kubernetes with the real kustomize
// (kubectl kustomize) and checks objects against the Kubernetes OpenAPI schemas, offline.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const KUSTOMIZE_DIR = path.join(ROOT, 'deploy', 'kubernetes');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<
    string,
    unknown
  >;
  [key: string]: unknown;
}

const INSTALL_KUBECTL =
  'install kubectl >= 1.27 (it embeds kustomize v5, which components need): the kubectl package ' +
  "of the machine image, or a kustomize v5 binary on PATH; Debian 12's kubernetes-client (1.20) is too old";

function kustomizeCommand(): { cmd: string; args: string[] } {
  for (const [cmd, args] of [
    ['kubectl', ['kustomize']],
    ['kustomize', ['build']],
  ] as const) {
    try {
      const v = execFileSync(cmd, cmd === 'kubectl' ? ['version', '--client'] : ['version'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const m = /Kustomize Version: v?(\d+)|^v?(\d+)\./m.exec(v);
      const major = Number(m?.[1] ?? m?.[2]);
      if (major >= 5) return { cmd, args: [...args] };
    } catch {
      // not installed: try the next
    }
  }
  throw new Error(`no kustomize v5 found: ${INSTALL_KUBECTL}`);
}

let command: { cmd: string; args: string[] } | undefined;

/** `kubectl kustomize <dir>`, parsed; dir relative to deploy/kubernetes or absolute. */
export function kustomizeBuild(dir: string): K8sObject[] {
  command ??= kustomizeCommand();
  const abs = path.isAbsolute(dir) ? dir : path.join(KUSTOMIZE_DIR, dir);
  let out: string;
  try {
    out = execFileSync(command.cmd, [...command.args, abs], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 32 * 1024 * 1024,
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${command.cmd} ${command.args.join(' ')} ${dir} failed: ${stderr}`, {
      cause: err,
    });
  }
  return parseYamlDocuments(out, dir);
}

/** Builds a throw-away overlay of `resources` and `components` (paths under deploy/kubernetes). */
export function kustomizeCompose(resources: string[], components: string[]): K8sObject[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'dnsrace-kustomize-'));
  try {
    const rel = (p: string) => path.relative(dir, path.join(KUSTOMIZE_DIR, p));
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        ...resources.map((r) => `  - ${rel(r)}`),
        'components:',
        ...components.map((c) => `  - ${rel(c)}`),
        '',
      ].join('\n'),
    );
    return kustomizeBuild(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function parseYamlDocuments(text: string, what: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  const out: K8sObject[] = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    if (d.errors.length > 0)
      throw new Error(`${what}: ${d.errors.map((e) => e.message).join('; ')}`);
    const obj = d.toJS() as K8sObject | null;
    if (obj) out.push(obj);
  }
  return out;
}

export function only<T extends K8sObject = K8sObject>(objs: K8sObject[], kind: string): T {
  const found = objs.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

/**
 * Fields the Kubernetes API does not know, from @kubernetes/client-node's generated models
 * (OpenAPI of Kubernetes 1.34): the JSON schemas accept unknown fields, the API server drops
 * them silently (or refuses them with --validate=strict), so a typo would pass unnoticed.
 */
export function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const list = /^Array<(.+)>$/.exec(type);
  if (list)
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, list[1]!, `${at}[${i}]`))
      : [`${at}: not a list`];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map)
    return Object.entries(value as object).flatMap(([k, v]) =>
      unknownFields(v, map[1]!, `${at}.${k}`),
    );
  if (['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString'].includes(type))
    return [];
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttrType[] }>)[
    type
  ];
  if (!model?.getAttributeTypeMap) throw new Error(`${at}: no model ${type} in client-node`);
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
  return Object.entries(value).flatMap(([key, v]) => {
    const t = attrs.get(key);
    return t === undefined ? [`${at}.${key}`] : unknownFields(v, t, `${at}.${key}`);
  });
}

interface AttrType {
  baseName: string;
  type: string;
}

/** client-node's model name of a built-in object: apps/v1 DaemonSet -> V1DaemonSet. */
export function clientNodeType(o: K8sObject): string {
  const version = o.apiVersion.split('/').pop()!;
  return `${version[0]!.toUpperCase()}${version.slice(1)}${o.kind}`;
}
