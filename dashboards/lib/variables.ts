// Template variables shared by every dashboard, and the label matchers that use them.
import {
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { METRIC } from '../../src/metrics/names.js';
import { sel, type Matchers } from './promql.js';

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

/** Matchers every query carries: the chosen cluster(s) and node(s). */
export const NODE_SCOPE: Matchers = ['cluster=~"$cluster"', 'instance=~"$node"'];

const ALL = { selected: true, text: 'All', value: '$__all' };

export function datasourceVariable() {
  return new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus');
}

/**
 * `cluster` is an optional target label: with none, the list is empty and "All" (.*) still
 * matches every series, since an absent label is "" and ".*" matches "".
 */
export function clusterVariable() {
  return new QueryVariableBuilder('cluster')
    .label('Cluster')
    .datasource(DATASOURCE)
    .query(`label_values(${METRIC.buildInfo}, cluster)`)
    .includeAll(true)
    .allValue('.*')
    .multi(true)
    .current(ALL)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
}

/**
 * Shows node names, selects scrape targets: the text is dnsrace_build_info's `node`
 * (NODE_NAME from the downward API), the value the target's `instance`. Grafana renders a
 * query_result line as `name{label="value",...} value ts` with labels in Prometheus's
 * (sorted) order, so `instance` comes before `node`; `\b` keeps `exported_node` out.
 */
export const NODE_VARIABLE_QUERY = `query_result(${sel(METRIC.buildInfo, ['cluster=~"$cluster"'])})`;
export const NODE_VARIABLE_REGEX = '/\\binstance="(?<value>[^"]+)".*\\bnode="(?<text>[^"]+)"/';

export function nodeVariable() {
  return new QueryVariableBuilder('node')
    .label('Node')
    .datasource(DATASOURCE)
    .query(NODE_VARIABLE_QUERY)
    .regex(NODE_VARIABLE_REGEX)
    .includeAll(true)
    .allValue('.*')
    .multi(true)
    .current(ALL)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
}

export function namespaceVariable(o: { multi: boolean }) {
  const v = new QueryVariableBuilder('namespace')
    .label('Namespace')
    .datasource(DATASOURCE)
    .query(`label_values(${sel(METRIC.dnsQueries, NODE_SCOPE)}, namespace)`)
    .multi(o.multi)
    .includeAll(o.multi)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
  return o.multi ? v.allValue('.*').current(ALL) : v;
}

export function podVariable(o: { multi: boolean }) {
  const v = new QueryVariableBuilder('pod')
    .label('Pod')
    .datasource(DATASOURCE)
    .query(
      `label_values(${sel(METRIC.podQueries, [...NODE_SCOPE, 'namespace="$namespace"'])}, pod)`,
    )
    .multi(o.multi)
    .includeAll(o.multi)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
  return o.multi ? v.allValue('.*').current(ALL) : v;
}
