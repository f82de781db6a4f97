// A YAML writer for the plain data of rule and promtool test files (objects, arrays,
// strings, numbers, booleans). Multi-line strings (PromQL) become literal blocks so that
// they read as written; names stay plain; every other string is quoted, so nothing is
// ever read back as a number, a boolean or null. The generator then runs prettier over the result.
export type YamlValue = string | number | boolean | YamlValue[] | { [key: string]: YamlValue };

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function key(k: string): string {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

/** Strings safe to write unquoted: names, record names, severities; never a number. */
const PLAIN_STRING = /^[A-Za-z][A-Za-z0-9_.:/-]*$/;
const YAML_WORDS = /^(true|false|yes|no|on|off|y|n|null)$/i;

function scalar(v: string | number | boolean, indent: string): string {
  if (typeof v !== 'string') return String(v);
  if (PLAIN_STRING.test(v) && !YAML_WORDS.test(v)) return v;
  if (!v.includes('\n')) return JSON.stringify(v);
  if (/[ \t]$/m.test(v)) throw new Error(`trailing blank in a multi-line YAML string: ${v}`);
  return `|-\n${v
    .split('\n')
    .map((l) => (l === '' ? '' : `${indent}${l}`))
    .join('\n')}`;
}

function isEmpty(v: YamlValue): boolean {
  return typeof v === 'object' && (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
}

function block(v: YamlValue, indent: string): string {
  if (Array.isArray(v)) {
    return v
      .map((item) => {
        if (typeof item === 'object' && !isEmpty(item)) {
          const inner = block(item, `${indent}  `);
          return `${indent}- ${inner.slice(indent.length + 2)}`;
        }
        return `${indent}- ${inline(item, `${indent}  `)}`;
      })
      .join('\n');
  }
  if (typeof v === 'object') {
    return Object.entries(v)
      .map(([k, val]) =>
        typeof val === 'object' && !isEmpty(val)
          ? `${indent}${key(k)}:\n${block(val, `${indent}  `)}`
          : `${indent}${key(k)}: ${inline(val, `${indent}  `)}`,
      )
      .join('\n');
  }
  return `${indent}${scalar(v, indent)}`;
}

function inline(v: YamlValue, indent: string): string {
  if (Array.isArray(v)) return '[]';
  if (typeof v === 'object') return '{}';
  return scalar(v, indent);
}

/** The document for `value`, with an optional leading comment. */
export function toYaml(value: YamlValue, comment?: string): string {
  const head = comment ? `${comment.replace(/^/gm, '# ')}\n` : '';
  return `${head}${block(value, '')}\n`;
}
