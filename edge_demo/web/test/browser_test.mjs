// Drives the page in headless Chromium (puppeteer-core, Debian's chromium) the way a user
// does: open an export (?export=URL, or the file picker), pick files to classify, start the
// fake camera, time calls; writes what the page showed as JSON.
//
//   node test/browser_test.mjs JOBS.json RESULT.json
//
// JOBS.json: {chromium, base, jobs: [{id, export, pick, files, threads, top, camera,
// benchmark, screenshot}]}; `export` a served folder URL (e.g. /export/rgb/) or null, `pick` export
// files to choose with the model file picker instead, `files` the inputs to choose,
// `threads` and `top` the page's parameters or null, `camera` whether to classify a few
// frames of Chromium's fake camera, `benchmark` a number of timed calls (0: none),
// `screenshot` a PNG path or null. Used by tests/test_web_browser.py and
// benchmarks/web_latency.py. Exit status 0 when every job ran (whatever the page
// answered: the caller judges), 1 when the browser or the page failed.

import { readFileSync, writeFileSync } from "node:fs";

import puppeteer from "puppeteer-core";

const TIMEOUT_MS = 60000;

async function resultsOf(page) {
  return page.$$eval("#results article.result", (articles) => articles.reverse().map((a) => ({
    name: a.dataset.name,
    top: a.dataset.top ? JSON.parse(a.dataset.top) : null,
    ms: a.dataset.ms ? Number(a.dataset.ms) : null,
    error: a.dataset.error ?? null,
  })));
}

async function runJob(browser, base, job) {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
  page.on("console", (message) => {
    // LiteRT.js logs its start-up (INFO/WARNING lines) as errors, and that this machine
    // has no GPU for WebGPU; the page runs on the CPU.
    if (message.type() === "error" && !/^(INFO|WARNING): |WebGPU|GPU adapter/.test(message.text())) {
      consoleErrors.push(message.text());
    }
  });
  await page.setViewport({ width: 900, height: 1000 });
  const query = new URLSearchParams();
  if (job.export) query.set("export", job.export);
  if (job.threads !== null && job.threads !== undefined) query.set("threads", String(job.threads));
  if (job.top) query.set("top", String(job.top));
  await page.goto(`${base}/?${query}`, { waitUntil: "load" });
  const out = { id: job.id, consoleErrors };
  // Started, or LiteRT.js could not start (the runtime line turns into an error).
  await page.waitForFunction(() => document.body.dataset.started === "yes"
    || document.getElementById("runtime").className === "error", { timeout: TIMEOUT_MS });
  out.runtime = await page.evaluate(() => ({ isolated: globalThis.crossOriginIsolated,
    threads: window.discomkd.state.threads, threadedBuild: window.discomkd.state.runtime.threads,
    text: document.getElementById("runtime").textContent }));
  if (job.pick) {
    const picker = await page.$("#model-files");
    await picker.uploadFile(...job.pick);
  }
  if (job.export || job.pick) {
    await page.waitForFunction(() => document.body.dataset.ready === "model"
      || !document.getElementById("model-error").hidden, { timeout: TIMEOUT_MS });
  }
  out.modelError = await page.$eval("#model-error", (e) => (e.hidden ? null : e.textContent));
  out.modality = await page.$eval("#model-info", (e) => e.dataset.modality ?? null);
  if (!out.modelError && job.files?.length) {
    const input = await page.$("#input-files");
    await input.uploadFile(...job.files);
    await page.waitForFunction((n) => Number(document.body.dataset.classified || 0) >= n,
      { timeout: TIMEOUT_MS }, job.files.length);
    out.results = await resultsOf(page);
  }
  if (!out.modelError && job.camera) {
    await page.click("#camera-start");
    await page.waitForFunction(() => {
      const live = document.getElementById("camera-result");
      return (live.dataset.top && Number(live.dataset.name.split(":")[1]) >= 3) || live.dataset.error
        || document.querySelector("#results article.result[data-name=camera]");
    }, { timeout: TIMEOUT_MS });
    out.camera = await page.$eval("#camera-result", (e) => ({ name: e.dataset.name ?? null,
      top: e.dataset.top ? JSON.parse(e.dataset.top) : null, ms: e.dataset.ms ? Number(e.dataset.ms) : null }));
    out.cameraError = await page.evaluate(() =>
      document.querySelector("#results article.result[data-name=camera]")?.dataset.error ?? null);
    await page.click("#camera-stop").catch(() => {});
  }
  if (!out.modelError && job.benchmark) {
    out.benchmark = await page.evaluate((n) => window.discomkd.benchmark(n), job.benchmark);
  }
  if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: true });
  await page.close();
  return out;
}

const [jobsPath, resultPath] = process.argv.slice(2);
if (!jobsPath || !resultPath) {
  console.error("usage: node test/browser_test.mjs JOBS.json RESULT.json");
  process.exit(2);
}
const { chromium, base, jobs } = JSON.parse(readFileSync(jobsPath, "utf-8"));
const browser = await puppeteer.launch({
  executablePath: chromium,
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. The fake
  // media flags give getUserMedia a generated video and grant it without a prompt.
  args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
  headless: true,
});
let status = 0;
let current = null;
const results = { chromium: await browser.version(), jobs: [] };
try {
  for (const job of jobs) {
    current = job.id;
    results.jobs.push(await runJob(browser, base, job));
  }
} catch (err) {
  results.failure = `job ${current}: ${err.stack ?? err}`;
  status = 1;
} finally {
  await browser.close();
}
writeFileSync(resultPath, JSON.stringify(results, null, 1));
process.exit(status);
