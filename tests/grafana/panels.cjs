// The dashboard's panels through Grafana's own data library, @grafana/data (Apache-2.0),
// as Grafana's frontend runs them: the data frames Grafana's Prometheus datasource makes
// of each query's answer, the panel's transformations, then the display processor that
// turns a value into the text and colour the operator sees.
//
// Input (the file named by the first argument):
//   {"dashboard": {...}, "answers": {"<panel id>": [{"refId", "format", "legend",
//    "result": <Prometheus API "data.result">}]}}
// Output (stdout): {"unknownUnits": [...], "panels": [{"id", "title", "type",
//    "frames": [{"fields": [{"name", "type", "values", "display": [{"text", "color"}]}]}],
//    "stat": [{"text", "color"}]}]}
// Colours are given by name (green, red, orange…) when they are one of the theme's.
'use strict';

// @grafana/data reads the browser's locale while it loads, and `window` when it runs a
// transformation; Node has neither.
globalThis.navigator = { language: 'en-US', languages: ['en-US'] };
const data = require('@grafana/data');
globalThis.window = {};
const { lastValueFrom } = require('rxjs');
const fs = require('fs');

// The transformer registry, as Grafana's app fills it at start.
const byId = new Map();
for (const t of Object.values(data.standardTransformers)) {
  if (!byId.has(t.id)) byId.set(t.id, t);
}
data.standardTransformersRegistry.setInit(() =>
  [...byId.values()].map((t) => ({ id: t.id, name: t.name, transformation: () => t, editor: null })),
);

const theme = data.createTheme();
const colourNames = {};
for (const name of ['green', 'red', 'orange', 'yellow', 'blue', 'text', 'transparent']) {
  colourNames[theme.visualization.getColorByName(name)] = name;
}
const colourName = (c) => colourNames[c] || c;

const units = new Set(data.getValueFormats().flatMap((c) => c.submenu.map((s) => s.value)));

/// Grafana's Prometheus datasource: a table-format query is one frame per query, with
/// Time, one string column per label (sorted), and `Value` (`Value #A` when the panel has
/// more than one query); other formats give a frame per series with its labels on the
/// value field and the legend as its display name.
function frames(answers) {
  const out = [];
  const many = answers.length > 1;
  for (const a of answers) {
    const series = a.result;
    if (a.format === 'table') {
      const labels = [...new Set(series.flatMap((s) => Object.keys(s.metric)))].sort();
      const samples = series.map((s) => (s.value ? [s.value] : s.values).at(-1));
      out.push(
        data.toDataFrame({
          refId: a.refId,
          fields: [
            { name: 'Time', type: data.FieldType.time, values: samples.map((v) => v[0] * 1000) },
            ...labels.map((l) => ({
              name: l,
              type: data.FieldType.string,
              values: series.map((s) => s.metric[l] ?? ''),
            })),
            {
              name: many ? `Value #${a.refId}` : 'Value',
              type: data.FieldType.number,
              values: samples.map((v) => Number(v[1])),
            },
          ],
        }),
      );
      continue;
    }
    for (const s of series) {
      const points = s.value ? [s.value] : s.values;
      const legend = (a.legend || '').replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => s.metric[k] ?? '');
      out.push(
        data.toDataFrame({
          refId: a.refId,
          fields: [
            { name: 'Time', type: data.FieldType.time, values: points.map((p) => p[0] * 1000) },
            {
              name: 'Value',
              type: data.FieldType.number,
              labels: s.metric,
              config: legend ? { displayNameFromDS: legend } : {},
              values: points.map((p) => Number(p[1])),
            },
          ],
        }),
      );
    }
  }
  return out;
}

/// A field's config as the panel gives it: the defaults, then each override whose
/// matcher (by name) names the field.
function configFor(panel, field) {
  const cfg = { ...(panel.fieldConfig?.defaults || {}), ...(field.config || {}) };
  for (const o of panel.fieldConfig?.overrides || []) {
    if (o.matcher?.id === 'byName' && o.matcher.options === field.name) {
      for (const p of o.properties) cfg[p.id] = p.value;
    }
  }
  return cfg;
}

function display(panel, field, value) {
  const f = { ...field, config: configFor(panel, field) };
  const shown = data.getDisplayProcessor({ field: f, theme })(value);
  const text = [shown.prefix, shown.text, shown.suffix].filter(Boolean).join('');
  return { text, color: colourName(shown.color) };
}

async function run() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const panels = input.dashboard.panels.filter((p) => p.type !== 'row');
  const unknownUnits = [];
  for (const p of panels) {
    const all = [p.fieldConfig?.defaults?.unit];
    for (const o of p.fieldConfig?.overrides || []) {
      for (const prop of o.properties) if (prop.id === 'unit') all.push(prop.value);
    }
    for (const u of all) if (u && !units.has(u)) unknownUnits.push(`${p.title}: ${u}`);
  }
  const out = [];
  for (const p of panels) {
    const answers = input.answers[String(p.id)];
    if (!answers) continue;
    let result = frames(answers);
    if (p.transformations?.length) {
      result = await lastValueFrom(data.transformDataFrame(p.transformations, result));
    }
    const shownFrames = result.map((fr) => ({
      fields: fr.fields.map((f) => ({
        name: data.getFieldDisplayName(f, fr, result),
        type: f.type,
        values: Array.from(f.values),
        display: f.type === 'number' ? Array.from(f.values).map((v) => display(p, f, v)) : [],
      })),
    }));
    // A stat panel reduces each numeric field to one value with its calcs.
    const stat = [];
    if (p.type === 'stat' || p.type === 'gauge') {
      const calcs = p.options?.reduceOptions?.calcs || ['lastNotNull'];
      for (const fr of result) {
        for (const f of fr.fields.filter((f) => f.type === 'number')) {
          const reduced = data.reduceField({ field: f, reducers: calcs })[calcs[0]];
          stat.push({ name: data.getFieldDisplayName(f, fr, result), ...display(p, f, reduced) });
        }
      }
    }
    out.push({ id: p.id, title: p.title, type: p.type, frames: shownFrames, stat });
  }
  process.stdout.write(JSON.stringify({ unknownUnits, panels: out }));
}

run().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
