// Where dashboards link to: each other (by fixed uid) and the exporter's own pages.
import { DashboardLinkBuilder, DashboardLinkType } from '@grafana/grafana-foundation-sdk/dashboard';

export const DASHBOARD_TAG = 'dnsrace';

export const UID = {
  overview: 'dnsrace-overview',
  namespace: 'dnsrace-namespace',
  pod: 'dnsrace-pod',
} as const;

/**
 * The exporter's per-pod drill-down page, served by the exporter itself on its listen
 * address (built in a later issue). The one place that knows its path.
 */
export const EXPORTER_POD_PAGE_PATH = '/pods/{namespace}/{pod}';

export function exporterPodPage(instance: string, namespace: string, pod: string): string {
  return `http://${instance}${EXPORTER_POD_PAGE_PATH.replace('{namespace}', namespace).replace('{pod}', pod)}`;
}

/** The same page as a Grafana data link on a series labelled instance, namespace and pod. */
export const EXPORTER_POD_PAGE_FIELD_LINK = exporterPodPage(
  '${__field.labels.instance}',
  '${__field.labels.namespace:percentencode}',
  '${__field.labels.pod:percentencode}',
);

/** ...and on a table row with instance, namespace and pod columns. */
export const EXPORTER_POD_PAGE_ROW_LINK = exporterPodPage(
  '${__data.fields.instance}',
  '${__data.fields.namespace:percentencode}',
  '${__data.fields.pod:percentencode}',
);

const KEEP =
  '${datasource:queryparam}&${cluster:queryparam}&${node:queryparam}&${__url_time_range}';

/** Drill-down from a table row with a `namespace` column to the namespace dashboard. */
export const NAMESPACE_ROW_LINK = `/d/${UID.namespace}?${KEEP}&var-namespace=\${__data.fields.namespace:percentencode}`;

/** Drill-down from a table row with a `pod` column to the pod dashboard. */
export const POD_ROW_LINK = `/d/${UID.pod}?${KEEP}&\${namespace:queryparam}&var-pod=\${__data.fields.pod:percentencode}`;

export function dataLink(title: string, url: string, newTab = false) {
  return new DashboardLinkBuilder(title).type(DashboardLinkType.Link).url(url).targetBlank(newTab);
}

/** The dashboard bar's "dnsrace" menu: the other dashboards, keeping variables and time. */
export function siblingDashboards() {
  return new DashboardLinkBuilder('dnsrace')
    .type(DashboardLinkType.Dashboards)
    .tags([DASHBOARD_TAG])
    .asDropdown(true)
    .includeVars(true)
    .keepTime(true);
}
