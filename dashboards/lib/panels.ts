// Panel factories: every dashboard panel is one of these, so that datasource, refIds,
// legends and units are set the same way everywhere.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import {
  ThresholdsConfigBuilder,
  ThresholdsMode,
  type DashboardLink,
} from '@grafana/grafana-foundation-sdk/dashboard';
import {
  BigValueColorMode,
  BigValueGraphMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  TableSortByFieldStateBuilder,
  VizLegendOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import {
  PanelBuilder as HeatmapBuilder,
  YAxisConfigBuilder,
} from '@grafana/grafana-foundation-sdk/heatmap';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { DATASOURCE } from './variables.js';

export interface Query {
  expr: string;
  legend?: string;
  /** Ask Prometheus for the series' exemplars too ({pod, dns_id} of slow or timed-out lookups). */
  exemplar?: boolean;
}

type Link = cog.Builder<DashboardLink>;

const REF_IDS = 'ABCDEFGHIJ';

function refId(i: number): string {
  const r = REF_IDS[i];
  if (r === undefined) throw new Error(`a panel with ${i + 1} queries: at most ${REF_IDS.length}`);
  return r;
}

function rangeQuery(q: Query, i: number) {
  const b = new DataqueryBuilder()
    .expr(q.expr)
    .legendFormat(q.legend ?? '__auto')
    .range()
    .refId(refId(i));
  return q.exemplar ? b.exemplar(true) : b;
}

function instantQuery(q: Query, i: number) {
  return new DataqueryBuilder()
    .expr(q.expr)
    .legendFormat(q.legend ?? '__auto')
    .instant()
    .format(PromQueryFormat.Table)
    .refId(refId(i));
}

export interface Size {
  /** Grid columns of 24. */
  width?: number;
  height?: number;
}

export function timeseries(o: {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  links?: Link[];
  size?: Size;
}) {
  const p = new TimeseriesBuilder()
    .title(o.title)
    .description(o.description)
    .datasource(DATASOURCE)
    .unit(o.unit)
    .min(0)
    .fillOpacity(10)
    .span(o.size?.width ?? 12)
    .height(o.size?.height ?? 8)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.Table)
        .placement(LegendPlacement.Bottom)
        .calcs(['max', 'lastNotNull'])
        .sortBy('Max')
        .sortDesc(true),
    )
    .targets(o.queries.map(rangeQuery));
  return o.links ? p.dataLinks(o.links) : p;
}

/** One number over the dashboard's time range (the query does the reduction). */
export function stat(o: {
  title: string;
  description: string;
  unit: string;
  query: Query;
  /** Values at or above this turn the panel red. */
  redFrom?: number;
  size?: Size;
}) {
  const p = new StatBuilder()
    .title(o.title)
    .description(o.description)
    .datasource(DATASOURCE)
    .unit(o.unit)
    .span(o.size?.width ?? 4)
    .height(o.size?.height ?? 4)
    .graphMode(BigValueGraphMode.None)
    .colorMode(BigValueColorMode.Value)
    .noValue('0')
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .withTarget(instantQuery(o.query, 0).format(PromQueryFormat.TimeSeries));
  if (o.redFrom === undefined) return p;
  return p.thresholds(
    new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
      { value: null, color: 'green' },
      { value: o.redFrom, color: 'red' },
    ]),
  );
}

/**
 * A ranking: several instant queries sharing label columns, merged into one row per label
 * set; `columns` names each query's value column, in query order.
 */
export function table(o: {
  title: string;
  description: string;
  queries: (Query & { column: string; unit: string })[];
  sortBy: string;
  links?: Link[];
  size?: Size;
}) {
  const renameByName: Record<string, string> = {};
  const units = o.queries.map((q, i) => {
    const field = o.queries.length === 1 ? 'Value' : `Value #${refId(i)}`;
    renameByName[field] = q.column;
    return { name: q.column, unit: q.unit };
  });
  let p = new TableBuilder()
    .title(o.title)
    .description(o.description)
    .datasource(DATASOURCE)
    .span(o.size?.width ?? 12)
    .height(o.size?.height ?? 8)
    .targets(o.queries.map(instantQuery))
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation({
      id: 'organize',
      options: { excludeByName: { Time: true }, renameByName },
    })
    .sortBy([new TableSortByFieldStateBuilder().displayName(o.sortBy).desc(true)]);
  for (const u of units) p = p.overrideByName(u.name, [{ id: 'unit', value: u.unit }]);
  return o.links ? p.dataLinks(o.links) : p;
}

/** Latency distribution over time: native histogram cells or classic `le` rows. */
export function latencyHeatmap(o: {
  title: string;
  description: string;
  expr: string;
  size?: Size;
}) {
  return new HeatmapBuilder()
    .title(o.title)
    .description(o.description)
    .datasource(DATASOURCE)
    .span(o.size?.width ?? 12)
    .height(o.size?.height ?? 8)
    .calculate(false)
    .yAxis(new YAxisConfigBuilder().unit('s'))
    .withTarget(
      new DataqueryBuilder()
        .expr(o.expr)
        .legendFormat('{{le}}')
        .format(PromQueryFormat.Heatmap)
        .range()
        .refId('A'),
    );
}
