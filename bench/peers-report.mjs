// Turns run-peers.sh results into the report kept in bench/results/: the harness's table, then telemq's
// ratio to Mosquitto and Aedes per scenario, then (as the last line) one JSON object of ratios to Mosquitto.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const [resultsPath, tablePath, commit] = process.argv.slice(2);
const rows = readFileSync(resultsPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const median = (values) => {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const metric = (peer, scenario, key) => median(rows.filter((r) => r.peer === peer && r.scenario === scenario).map((r) => r.r[key]));

// Higher is better for rates; for latency and memory the ratio is inverted so that > 1 always means telemq is better.
const scenarios = {
  S1: { key: 'recv_rate', higher: true, label: 'msg/s' },
  S2: { key: 'recv_rate', higher: true, label: 'msg/s' },
  S3: { key: 'recv_rate', higher: true, label: 'deliveries/s' },
  S4: { key: 'recv_rate', higher: true, label: 'msg/s' },
  S5: { key: 'recv_rate', higher: true, label: 'msg/s' },
  S6: { key: 'lat_p99_us', higher: false, label: 'p99 us' },
  S7: { key: 'connect_rate', higher: true, label: 'conn/s' },
  S7mem: { key: 'broker_rss_per_conn_bytes', higher: false, label: 'bytes/conn', scenario: 'S7' },
};
const ratio = (ours, theirs, higher) => (higher ? ours / theirs : theirs / ours);
const round = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

const lines = [`# Peer benchmark ${new Date().toISOString()}`, '', `commit ${commit}, node ${process.version}, ${cpus().length} CPUs`, ''];
lines.push(readFileSync(tablePath, 'utf8').trim(), '', '### telemq ratios (> 1 means telemq is better)', '');
lines.push('| scenario | metric | telemq | mosquitto | aedes | vs mosquitto | vs aedes |', '|---|---|---:|---:|---:|---:|---:|');
const summary = {};
for (const [name, s] of Object.entries(scenarios)) {
  const scen = s.scenario ?? name;
  if (!rows.some((r) => r.scenario === scen && r.peer === 'extra')) continue;
  const ours = metric('extra', scen, s.key);
  const mosq = metric('mosquitto', scen, s.key);
  const aedes = metric('aedes', scen, s.key);
  const vsM = round(ratio(ours, mosq, s.higher));
  const vsA = round(ratio(ours, aedes, s.higher));
  summary[`${name}_vs_mosquitto`] = vsM;
  lines.push(`| ${name} | ${s.label} | ${Math.round(ours)} | ${Math.round(mosq)} | ${Math.round(aedes)} | ${vsM ?? 'n/a'} | ${vsA ?? 'n/a'} |`);
}
// Who was the bottleneck: a single-threaded broker at ~100% of a core is; a generator thread near 100% is.
lines.push('', '### CPU per scenario (medians, % of one core)', '');
lines.push('| scenario | peer | broker | broker busiest thread | generator busiest thread | generator process | other processes |', '|---|---|---:|---:|---:|---:|---:|');
const fmt = (x) => (Number.isFinite(x) ? String(Math.round(x)) : 'n/a');
for (const scen of ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7']) {
  for (const peer of ['extra', 'mosquitto', 'aedes']) {
    if (!rows.some((r) => r.scenario === scen && r.peer === peer)) continue;
    const c = scen === 'S7' ? '_connect_pct' : '_pct';
    const cells = [
      metric(peer, scen, `broker_cpu${c}`),
      metric(peer, scen, 'broker_thread_max_pct'),
      metric(peer, scen, 'gen_thread_max_pct'),
      metric(peer, scen, `gen_cpu${c}`),
      metric(peer, scen, `other_cpu${c}`),
    ].map(fmt);
    lines.push(`| ${scen} | ${peer === 'extra' ? 'telemq' : peer} | ${cells.join(' | ')} |`);
  }
}
lines.push('', `<!-- ${JSON.stringify(summary)} -->`);
console.log(lines.join('\n'));
