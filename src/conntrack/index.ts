export { availabilityLogLine, type LogLine } from './availability-log.js';
export { parseConntrackCount, parseConntrackS } from './conntrack-tool.js';
export {
  CONNTRACK_COUNTERS,
  CONNTRACK_HELP,
  CONNTRACK_METRIC,
  conntrackFamilies,
} from './metrics.js';
export { parseProcStat } from './proc-stat.js';
export {
  ConntrackReader,
  DEFAULT_MAX_FILES,
  DEFAULT_MODULE_DIR,
  DEFAULT_STAT_FILE,
  type ConntrackReaderOptions,
} from './reader.js';
export {
  counterName,
  isAvailable,
  type ConntrackCounters,
  type ConntrackReading,
  type ConntrackSample,
  type ConntrackSource,
  type ConntrackStats,
  type ConntrackUnavailable,
  type UnavailableReason,
} from './sample.js';
