/**
 * The dashboard's stylesheet (served as /ui/app.css). Plain CSS, system fonts; laptop-first, with a
 * phone layout under 700 px (tables become cards, no sideways scrolling). Text colours keep a
 * contrast of at least 4.5:1 on their backgrounds, badges included.
 */
export const STYLE_CSS = `
:root {
  --bg: #f5f6f8; --panel: #fff; --text: #1d232b; --muted: #5b6574; --line: #dde1e6;
  --accent: #2457c5; --accent-weak: #e8eefb; --ok: #17703d; --ok-weak: #e4f4ea;
  --bad: #a8302f; --bad-weak: #fbe9e9; --warn: #875500; --warn-weak: #fdf2dc; --run: #2457c5; --run-weak: #e8eefb;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { margin: 0; padding: 0; }
body { background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: var(--mono); font-size: 12.5px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; background: #f3f4f6; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; max-height: 240px; overflow: auto; }

header.top { display: flex; align-items: center; gap: 20px; padding: 0 20px; height: 48px; background: #17202c; color: #e9edf2; position: sticky; top: 0; z-index: 5; }
header.top .brand { color: #fff; font-weight: 700; font-size: 17px; letter-spacing: .3px; }
header.top nav { display: flex; gap: 4px; flex: 1; }
header.top nav a { color: #c4ccd6; padding: 6px 10px; border-radius: 4px; }
header.top nav a:hover { background: #263242; color: #fff; text-decoration: none; }
header.top nav a.active { background: #2c3a4d; color: #fff; }
#auth-status { font-size: 12.5px; color: #c4ccd6; display: flex; gap: 8px; align-items: center; }
#auth-status .dot { width: 8px; height: 8px; border-radius: 50%; display: inline-block; background: #7a8594; }
h1:focus { outline: none; }
h1:focus-visible { outline: 2px solid #9db7ee; }
#auth-status .dot.up { background: #3fbf72; }
#auth-status .dot.down { background: #e05252; }
#auth-status button { background: transparent; color: #c4ccd6; border: 1px solid #3a4759; padding: 2px 8px; }

main { max-width: 1400px; margin: 0 auto; padding: 16px 20px 40px; }
footer { max-width: 1400px; margin: 0 auto; padding: 0 20px 20px; color: var(--muted); font-size: 12px; }
h1 { font-size: 20px; margin: 4px 0 12px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
h2 { font-size: 15px; margin: 18px 0 8px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.row { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.spacer { flex: 1; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; }
.grid3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; }
@media (max-width: 1000px) { .grid2, .grid3 { grid-template-columns: minmax(0, 1fr); } }

#flash { max-width: 1400px; margin: 10px auto 0; padding: 0 20px; }
.flash { padding: 8px 12px; border-radius: 5px; margin-bottom: 6px; display: flex; gap: 10px; align-items: flex-start; }
.flash.ok { background: var(--ok-weak); color: #12512d; border: 1px solid #bfe3cc; }
.flash.error { background: var(--bad-weak); color: #7d1f1f; border: 1px solid #efc5c5; }
.flash .msg { flex: 1; white-space: pre-wrap; }
.flash button { background: transparent; border: 0; padding: 0 4px; font-size: 16px; color: inherit; cursor: pointer; }

button, .btn { font: inherit; font-size: 13px; padding: 5px 11px; border-radius: 4px; border: 1px solid #c3c9d1; background: #fff; color: var(--text); cursor: pointer; white-space: nowrap; }
button:hover, .btn:hover { background: #f0f2f5; text-decoration: none; }
button:disabled { opacity: .55; cursor: default; }
button.primary, .btn.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover, .btn.primary:hover { background: #1d49a8; }
button.danger { color: var(--bad); border-color: #e3b3b3; }
button.danger.armed { background: var(--bad); color: #fff; border-color: var(--bad); }
button.small, .btn.small { padding: 2px 8px; font-size: 12px; }
input, select, textarea { font: inherit; font-size: 13px; padding: 5px 8px; border: 1px solid #c3c9d1; border-radius: 4px; background: #fff; color: var(--text); }
textarea { font-family: var(--mono); font-size: 12.5px; width: 100%; min-height: 64px; resize: vertical; }
input:focus, select:focus, textarea:focus { outline: 2px solid #9db7ee; outline-offset: 0; border-color: var(--accent); }
label { font-size: 12.5px; color: var(--muted); }

table { width: 100%; border-collapse: collapse; background: var(--panel); }
.table-wrap { border: 1px solid var(--line); border-radius: 6px; overflow: auto; background: var(--panel); }
th, td { text-align: left; padding: 6px 9px; border-bottom: 1px solid #edf0f3; vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); background: #fafbfc; position: sticky; top: 0; white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
tbody tr:hover { background: #fafbfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.actions { white-space: nowrap; text-align: right; }
td.actions button { margin-left: 4px; }
td.err { color: var(--bad); max-width: 360px; word-break: break-word; }
td .sub { color: var(--muted); font-size: 12px; }
.empty { padding: 24px; text-align: center; color: var(--muted); }
.ellipsis { max-width: 260px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }

.badge { display: inline-block; font-size: 11.5px; font-weight: 600; padding: 1px 8px; border-radius: 10px; letter-spacing: .2px; border: 1px solid transparent; }
.badge.active, .badge.SUCCESS { background: var(--ok-weak); color: var(--ok); border-color: #bfe3cc; }
.badge.paused, .badge.SKIPPED, .badge.MISSED { background: var(--warn-weak); color: var(--warn); border-color: #f0d8a8; }
.badge.completed { background: #eef0f3; color: #59636f; border-color: #dde1e6; }
.badge + .badge { margin-left: 4px; }
.badge.FAIL, .badge.auto { background: var(--bad-weak); color: var(--bad); border-color: #efc5c5; }
.badge.PENDING, .badge.RUNNING { background: var(--run-weak); color: var(--run); border-color: #c5d4f3; }

dl.kv { display: grid; grid-template-columns: 110px minmax(0, 1fr) 120px minmax(0, 1fr); gap: 5px 12px; margin: 0; align-items: baseline; }
dl.kv dt.wide { grid-column: 1; }
dl.kv dd.wide { grid-column: 2 / -1; }
dl.kv pre.body { max-height: 120px; }
dl.kv dt { color: var(--muted); font-size: 12.5px; }
dl.kv dd { margin: 0; word-break: break-word; }
ol.fires { margin: 0; padding-left: 20px; }
ol.fires li { font-variant-numeric: tabular-nums; }

.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin-bottom: 14px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 9px 12px; }
.card .label { font-size: 12px; color: var(--muted); }
.card .value { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .value.bad { color: var(--bad); }
.card .value.ok { color: var(--ok); }

.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px 6px; }
.chart .title { font-weight: 600; font-size: 13px; display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.chart .legend { font-weight: 400; font-size: 12px; color: var(--muted); display: flex; gap: 12px; }
.chart .legend i { display: inline-block; width: 10px; height: 3px; vertical-align: middle; margin-right: 4px; border-radius: 2px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart svg text { font-size: 10.5px; fill: #5b6574; font-family: system-ui, sans-serif; }
.chart svg .grid { stroke: #edf0f3; stroke-width: 1; }
.chart svg .axis { stroke: #c9cfd6; stroke-width: 1; }
.chart svg polyline { fill: none; stroke-width: 1.8; stroke-linejoin: round; }

form.task-form { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; }
@media (max-width: 1000px) { form.task-form { grid-template-columns: minmax(0, 1fr); } }
.field { display: flex; flex-direction: column; gap: 3px; margin-bottom: 10px; }
.field input, .field select { width: 100%; }
.field input[type=checkbox] { width: auto; margin: 0 6px 0 0; vertical-align: -2px; }
label input[type=checkbox] { vertical-align: -2px; }
.field .hint { font-size: 11.5px; color: var(--muted); }
.fields3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px; }
.fields2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; }
.preview { font-size: 12.5px; min-height: 20px; }
.preview.error { color: var(--bad); }
.form-error { grid-column: 1 / -1; }
.form-actions { grid-column: 1 / -1; display: flex; gap: 10px; }

.login { max-width: 420px; margin: 60px auto; }
.login .field input { font-size: 14px; padding: 7px 9px; }

.slots { display: grid; grid-template-columns: repeat(32, minmax(0, 1fr)); gap: 2px; }
.slot { height: 16px; border-radius: 2px; background: #d6dbe1; }
.slot.none { background: repeating-linear-gradient(45deg, #f1c9c9, #f1c9c9 3px, #fbe9e9 3px, #fbe9e9 6px); }
td.node i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin-right: 6px; }
.pager { display: flex; gap: 8px; align-items: center; margin-top: 10px; }
details summary { cursor: pointer; color: var(--accent); font-size: 12px; }

.zone { color: var(--muted); font-size: 12px; }
.warn-text { color: var(--warn); }
.preview.warn { color: var(--warn); }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px; }
.figures .card .value { font-size: 15px; white-space: normal; }
svg.spark { width: 120px; height: 28px; display: block; }
svg.spark .bar-ok { fill: #2f9a5c; }
svg.spark .bar-fail { fill: var(--bad); }
svg.spark .bar-other { fill: #b0b8c2; }
td.figs { white-space: nowrap; }
.tag { display: inline-block; font-size: 11.5px; padding: 0 6px; margin: 1px 3px 1px 0; border-radius: 3px; background: #eef0f3; color: #3d4651; border: 1px solid #dde1e6; }
.note { padding: 8px 12px; border-radius: 5px; background: var(--warn-weak); color: #5c3a00; border: 1px solid #f0d8a8; margin-bottom: 10px; }
.log { max-height: 320px; min-height: 60px; }
.log .seq { color: var(--muted); user-select: none; }
.inline-form { display: grid; gap: 8px; margin-top: 8px; }
.bars rect.success { fill: #2f9a5c; }
.bars rect.fail { fill: var(--bad); }
.bars rect.skipped { fill: #c98a1a; }
.bars rect.missed { fill: #8a94a1; }
.failures li { margin-bottom: 6px; }
.filters { margin-bottom: 10px; }

@media (max-width: 700px) {
  header.top { height: auto; flex-wrap: wrap; gap: 4px 12px; padding: 6px 12px; }
  header.top nav { flex-wrap: wrap; order: 3; flex-basis: 100%; }
  main { padding: 12px 10px 30px; }
  #flash { padding: 0 10px; }
  footer { padding: 0 10px 16px; }
  .grid2, .grid3, .fields2, .fields3 { grid-template-columns: minmax(0, 1fr); }
  dl.kv { grid-template-columns: minmax(90px, auto) minmax(0, 1fr); }
  dl.kv dd.wide { grid-column: 2; }
  .table-wrap { border: 0; background: transparent; overflow: visible; }
  table.cards-sm, table.cards-sm tbody, table.cards-sm tr, table.cards-sm td { display: block; width: 100%; }
  table.cards-sm thead { display: none; }
  table.cards-sm tr { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; margin-bottom: 8px; padding: 6px 4px; display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  table.cards-sm td:first-child, table.cards-sm td.actions, table.cards-sm td.wide, table.cards-sm td.empty { grid-column: 1 / -1; }
  table.cards-sm td { border: 0; padding: 3px 8px; text-align: left; }
  table.cards-sm td.num, table.cards-sm td.actions { text-align: left; white-space: normal; }
  table.cards-sm td.actions button { margin: 2px 4px 2px 0; }
  table.cards-sm td[data-label]::before { content: attr(data-label); display: block; font-size: 11.5px; color: var(--muted); }
  table.cards-sm td.empty::before { content: none; }
  td.err { max-width: none; }
  .ellipsis { max-width: 100%; }
  pre { max-width: 100%; }
  button, .btn { white-space: normal; }
  .slots { grid-template-columns: repeat(16, minmax(0, 1fr)); }
  svg.spark { width: 100px; }
  .card .value { white-space: normal; font-size: 17px; }
}
`;
