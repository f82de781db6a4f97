import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, OPTIONS, parseConfig, parseDuration } from '../../src/config.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['5', undefined],
    ['s', undefined],
    ['-1s', undefined],
  ])('%s -> %s', (text, ms) => expect(parseDuration(text)).toBe(ms));
});

describe('parseConfig', () => {
  it('uses named defaults', () => {
    const r = parseConfig([], {});
    expect(r.help).toBe(false);
    if (r.help) return;
    expect(r.config.listenHost).toBe('0.0.0.0');
    expect(r.config.listenPort).toBe(9853);
    expect(r.config.bpffsDir).toBe('/sys/fs/bpf/dnsrace');
    expect(r.config.timeoutDeadlineMs).toBe(5000);
    expect(r.config.cgroupRoot).toBeUndefined();
    expect(r.config.bpfObject).toMatch(/bpf\/dist\/dns\.bpf\.o$/);
    expect(r.config.purgeOnExit).toBe(false);
  });

  it('lets flags win over the environment, and the environment over defaults', () => {
    const env = { DNSRACE_READ_INTERVAL: '2s', DNSRACE_LISTEN_ADDRESS: '127.0.0.1:9000' };
    const r = parseConfig(['--listen-address', '[::1]:9100', '--purge-on-exit'], env);
    if (r.help) throw new Error('unexpected help');
    expect(r.config.listenHost).toBe('::1');
    expect(r.config.listenPort).toBe(9100);
    expect(r.config.readIntervalMs).toBe(2000);
    expect(r.config.purgeOnExit).toBe(true);
  });

  it('accepts --flag=value', () => {
    const r = parseConfig(['--pod-series-limit=7'], {});
    if (r.help) throw new Error('unexpected help');
    expect(r.config.podSeriesLimit).toBe(7);
  });

  it.each([
    [['--read-interval', 'soon'], /--read-interval.*positive duration/],
    [['--listen-address', 'nope'], /HOST:PORT/],
    [['--listen-address', ':99999'], /HOST:PORT/],
    [['--listen-address', '1.2.3.4:-1'], /HOST:PORT/],
    [['--pod-series-limit', '0'], /positive whole number/],
    [['--bogus'], /unknown option '--bogus'/],
    [['--bpffs-dir'], /needs a value/],
    [['--timeout-deadline', '200ms'], /at least 1s/],
  ])('rejects %j with a message that says what to change', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });

  it('names the environment variable when the environment is wrong', () => {
    expect(() => parseConfig([], { DNSRACE_PURGE_ON_EXIT: 'maybe' })).toThrow(
      /DNSRACE_PURGE_ON_EXIT/,
    );
  });

  it('answers --help, and the help lists every flag and variable', () => {
    expect(parseConfig(['--read-interval', '1s', '--help'], {})).toEqual({ help: true });
    const text = helpText();
    for (const o of OPTIONS) {
      expect(text).toContain(o.flag);
      expect(text).toContain(o.env);
    }
  });
});

describe('README configuration table', () => {
  it('documents every flag with its variable and default', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    for (const o of OPTIONS) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${o.flag}\``));
      expect(row, `README row for ${o.flag}`).toBeDefined();
      expect(row).toContain(`\`${o.env}\``);
      if (o.default && !o.default.startsWith('/work'))
        expect(row).toContain(o.default.replace(/^.*\/bpf\/dist/, 'bpf/dist'));
    }
  });
});
