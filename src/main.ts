#!/usr/bin/env node
// Entry point: parse config, build the exporter, start it, stop it on SIGTERM/SIGINT.
import { ConfigError, helpText, parseConfig } from './config.js';
import { Exporter } from './exporter.js';
import { createLogger } from './log.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dnsrace: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  const log = createLogger(parsed.config.logLevel);
  const exporter = new Exporter(parsed.config, log);

  let stopping: Promise<void> | undefined;
  let signalled: () => void = () => undefined;
  const signalledOnce = new Promise<void>((resolve) => (signalled = resolve));
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without cleanup');
      process.exit(1);
    }
    log.info({ signal }, 'stopping: detaching BPF programs');
    stopping = exporter.stop();
    signalled();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  try {
    await exporter.start();
  } catch (err) {
    log.fatal({ err }, `cannot start: ${err instanceof Error ? err.message : String(err)}`);
    await exporter
      .stop()
      .catch((e: unknown) => log.error({ err: e }, 'cleanup after a failed start failed'));
    return 1;
  }
  await signalledOnce;
  try {
    await stopping;
    log.info('stopped');
    return 0;
  } catch (err) {
    log.error(
      { err },
      'stopping failed: programs may still be attached; run again and stop cleanly, or see README troubleshooting',
    );
    return 1;
  }
}

main().then(
  // Exit now: everything is cleaned up, and a stray handle must not keep a stopped exporter alive.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `dnsrace: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
