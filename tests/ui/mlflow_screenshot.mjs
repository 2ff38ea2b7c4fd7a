// The MLflow UI check of issue 6: opens the MLflow UI in headless Chromium (puppeteer-core),
// finds the newest parent run of an experiment through the REST API, expands it in the runs
// table and saves two screenshots — the runs table with the parent's children, and the parent
// run's page — then prints what the REST API says the UI should show (children and their cell
// tags), so the picture can be checked against it.
//
// Usage (see `just mlflow-screenshot`): node tests/ui/mlflow_screenshot.mjs URI EXPERIMENT OUTDIR
// [PARENT_RUN_ID] (default: the newest finished parent run)
import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';

const [uri, experiment, outDir, parentId] = process.argv.slice(2);
if (!uri || !experiment || !outDir) {
  console.error('usage: mlflow_screenshot.mjs MLFLOW_URI EXPERIMENT OUTDIR');
  process.exit(2);
}

async function api(path, body) {
  const res = await fetch(`${uri}/api/2.0/mlflow/${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

const tag = (run, key) => (run.data.tags || []).find((t) => t.key === key)?.value;

const { experiment: exp } = await api(
  `experiments/get-by-name?experiment_name=${encodeURIComponent(experiment)}`,
);
const runs = [];
let page_token;
do {
  const r = await api('runs/search', {
    experiment_ids: [exp.experiment_id],
    max_results: 1000,
    order_by: ['attributes.start_time DESC'],
    page_token,
  });
  runs.push(...(r.runs || []));
  page_token = r.next_page_token;
} while (page_token);
const parent = runs.find((r) =>
  parentId
    ? r.info.run_id === parentId
    : !tag(r, 'mlflow.parentRunId') && r.info.status === 'FINISHED');
if (!parent) throw new Error(`experiment ${experiment}: no ${parentId ? `run ${parentId}` : 'finished parent run'}`);
const children = runs.filter((r) => tag(r, 'mlflow.parentRunId') === parent.info.run_id);

mkdirSync(outDir, { recursive: true });
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--hide-scrollbars'],
  defaultViewport: { width: 1600, height: 300 + 34 * (children.length + 8) },
});
try {
  const page = await browser.newPage();
  const settle = () => new Promise((r) => setTimeout(r, 2500));
  await page.goto(`${uri}/#/experiments/${exp.experiment_id}?workflowType=machine_learning`, {
    waitUntil: 'networkidle0',
  });
  await settle();
  const close = await page.$('button[aria-label="Close"]');
  if (close) await close.click();
  const row = await page.waitForSelector(`[role=row][row-id="${parent.info.run_id}"]`, {
    timeout: 20000,
  });
  const expander = await row.$('[col-id="attributes.`Run Name`"] button');
  if (!expander) throw new Error('the parent row has no expander: the UI shows no child runs');
  await expander.click();
  await settle();
  const shown = await page.$$eval('[role=row][row-id]', (rows) => rows.map((r) => r.getAttribute('row-id')));
  const missing = children.filter((c) => !shown.includes(c.info.run_id));
  await page.screenshot({ path: `${outDir}/${experiment}-runs.png` });
  await page.goto(
    `${uri}/#/experiments/${exp.experiment_id}/runs/${parent.info.run_id}?workflowType=machine_learning`,
    { waitUntil: 'networkidle0' },
  );
  await settle();
  await page.screenshot({ path: `${outDir}/${experiment}-parent.png` });
  console.log(`experiment ${experiment} (id ${exp.experiment_id}), parent run ${parent.info.run_name} ${parent.info.run_id}`);
  console.log(`children in MLflow: ${children.length}; shown in the runs table: ${children.length - missing.length}`);
  for (const c of children.sort((a, b) => a.info.run_name.localeCompare(b.info.run_name))) {
    const pass = (c.data.metrics || []).find((m) => m.key === 'pass_at_1')?.value;
    console.log(`  ${c.info.run_name}  ${c.info.status}  cell_key=${tag(c, 'valley.cell_key')}  pass_at_1=${pass ?? '-'}`);
  }
  console.log(`screenshots: ${outDir}/${experiment}-runs.png, ${outDir}/${experiment}-parent.png`);
  if (missing.length) {
    console.error(`not shown in the UI: ${missing.map((c) => c.info.run_name).join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
