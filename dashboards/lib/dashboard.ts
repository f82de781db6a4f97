// Assembles a dashboard from rows of panels, with what every dnsrace dashboard shares:
// fixed uid, tag, time range, variables, the link menu, and stable panel ids.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import {
  DashboardBuilder,
  DashboardCursorSync,
  RowBuilder,
  type Dashboard,
  type Panel,
  type RowPanel,
  type VariableModel,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARD_TAG, siblingDashboards } from './links.js';

export interface Row {
  title: string;
  panels: cog.Builder<Panel>[];
}

export function buildDashboard(o: {
  uid: string;
  title: string;
  description: string;
  variables: cog.Builder<VariableModel>[];
  rows: Row[];
}): Dashboard {
  let b = new DashboardBuilder(o.title)
    .uid(o.uid)
    .description(o.description)
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .timezone('browser')
    .variables(o.variables)
    .link(siblingDashboards());
  for (const row of o.rows) {
    b = b.withRow(new RowBuilder(row.title));
    for (const p of row.panels) b = b.withPanel(p);
  }
  const d = b.build();
  // The SDK leaves ids unset (0 on rows); Grafana needs unique ones for links and repeats.
  let id = 1;
  for (const p of d.panels ?? []) (p as Panel | RowPanel).id = id++;
  return d;
}
