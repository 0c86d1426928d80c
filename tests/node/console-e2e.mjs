// The web console in a real browser (Debian's chromium, headless, driven by playwright-core): sign-in, upload of
// a valid and an invalid adapter, activation, try-it, the soft-prompt pictures, the operator's tenants and keys,
// and what a tenant key must not reach. Environment: LOPA_URL, TENANT_KEY, ADMIN_KEY, OTHER_ADAPTER (another
// tenant's adapter id), VALID_ADAPTER and INVALID_ADAPTER (files), CHROMIUM (optional), SCREENSHOTS (optional
// folder for docs). Throws on the first failed check; prints a JSON summary.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const env = process.env;
const base = env.LOPA_URL.replace(/\/$/, "");
const shots = env.SCREENSHOTS;
const browser = await chromium.launch({ executablePath: env.CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox"] });
const summary = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const failures = [];
  page.on("pageerror", (e) => failures.push(e.message));
  // The console's own files (pages, scripts, styles, the favicon) must all load; the API's deliberate 4xx answers
  // (a wrong key, an invalid upload) are part of the test, and Chromium reports them as "Failed to load resource".
  const own = (url) => !/^\/(v1|admin)\//.test(new URL(url).pathname);
  page.on("response", (r) => { if (r.status() >= 400 && own(r.url())) failures.push(`${r.status()} ${r.url()}`); });
  page.on("requestfailed", (r) => { if (own(r.url())) failures.push(`failed ${r.url()}`); });
  page.on("console", (m) => {
    const text = m.text();
    if ((m.type() === "error" && !text.startsWith("Failed to load resource")) || text.includes("Pattern attribute"))
      failures.push(`console: ${text}`);
  });
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };

  // Sign-in: a wrong key is refused in place; the right one is kept in session storage, never in the URL.
  await page.goto(`${base}/console/`);
  assert.ok(!(await page.isVisible("#nav")), "the navigation shows before sign-in");
  assert.ok(!(await page.isVisible("#sign-out")), "Sign out shows before sign-in");
  await page.fill("#key", "not-a-key-0000000000000");
  await page.click("#sign-in-form button");
  await page.waitForFunction(() => document.querySelector("#sign-in-error").textContent.length > 0);
  summary.wrongKey = await page.textContent("#sign-in-error");
  await shot("sign-in");
  await page.fill("#key", env.TENANT_KEY);
  await page.click("#sign-in-form button");
  await page.waitForSelector("#view-adapters:not([hidden]) #adapters-table tbody tr");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("lopa.console.key")), env.TENANT_KEY);
  assert.ok(!page.url().includes(env.TENANT_KEY));
  summary.tenant = await page.textContent("#tenant-name");

  // Upload: an invalid file shows the server's validation error in place; a valid one appears, then activates.
  const rowsBefore = await page.locator("#adapters-table tbody tr").count();
  await page.fill("#upload-form input[name=name]", "story");
  await page.fill("#upload-form input[name=version]", "9");
  await page.setInputFiles("#upload-files", env.INVALID_ADAPTER);
  await page.click("#upload-form button");
  await page.waitForFunction(() => document.querySelector("#upload-error").textContent.length > 0);
  summary.invalidUpload = await page.textContent("#upload-error");
  assert.equal(await page.locator("#adapters-table tbody tr").count(), rowsBefore);
  await page.uncheck("#upload-form input[name=activate]");
  await page.setInputFiles("#upload-files", env.VALID_ADAPTER);
  await page.click("#upload-form button");
  await page.waitForFunction((n) => document.querySelectorAll("#adapters-table tbody tr").length === n + 1,
    rowsBefore);
  const row = page.locator("#adapters-table tbody tr")
    .filter({ has: page.locator("td:nth-child(2)", { hasText: /^9$/ }) });
  assert.equal(await row.locator("td").nth(2).textContent(), "");
  await row.getByRole("button", { name: "activate" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("#adapters-table tbody tr")].some((r) =>
    r.cells[0].textContent === "story" && r.cells[1].textContent === "9" && r.cells[2].textContent === "active"));
  summary.adapterRows = await page.locator("#adapters-table tbody tr").count();
  await shot("adapters");

  // Try it: the same prompt with and without the adapter, side by side, with the LoPA step's timings.
  await page.click("nav a[data-view=try]");
  await page.waitForSelector("#try-adapter option", { state: "attached" });
  summary.tryAdapter = await page.inputValue("#try-adapter");
  await page.waitForFunction((example) => document.querySelector("#try-prompt").value === example,
    env.PROMPT_EXAMPLE);
  summary.tryPrompt = await page.inputValue("#try-prompt");
  await page.click("#try-form button");
  await page.waitForFunction(() => document.querySelector("#try-with-meta").textContent.includes("encoder"));
  summary.without = await page.textContent("#try-without");
  summary.with = await page.textContent("#try-with");
  summary.withMeta = await page.textContent("#try-with-meta");
  assert.ok(summary.without.length > 0 && summary.with.length > 0);
  await shot("try-it");

  // The soft prompt: three heatmaps m × d and a projection with one point per labelled text.
  await page.click("nav a[data-view=soft-prompt]");
  await page.waitForSelector("#inspect-adapter option", { state: "attached" });
  const labelled = ["good: a gorgeous, witty, seductive movie", "good: the actors were wonderful",
    "good: a joy from start to end", "bad: dull and far too long", "bad: the plot makes no sense",
    "bad: i wanted my money back"];
  await page.fill("#inspect-texts", labelled.join("\n"));
  await page.click("#inspect-form button");
  await page.waitForSelector("#heatmaps canvas");
  await page.waitForSelector("#projection circle");
  summary.heatmaps = await page.$$eval("#heatmaps canvas", (cs) => cs.map((c) => ({
    rows: Number(c.dataset.rows), columns: Number(c.dataset.columns), width: c.width, height: c.height,
    painted: (() => {
      const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] !== 255 || data[i + 1] !== 255 || data[i + 2] !== 255) coloured++;
      }
      return coloured;
    })(),
  })));
  summary.points = await page.locator("#projection circle").count();
  summary.labels = await page.$$eval("#projection circle", (cs) => [...new Set(cs.map((c) => c.dataset.label))]);
  summary.bars = await page.locator("#row-norms rect").count();
  summary.projectionCaption = await page.textContent("#projection-caption");
  summary.axisLabels = await page.$$eval("#projection text.axis", (ts) => ts.map((t) => t.textContent));
  await shot("soft-prompt");

  // A tenant key reaches neither the operator's pages nor another tenant's adapters.
  await page.evaluate(() => { location.hash = "#operator"; });
  await page.waitForSelector("#view-adapters:not([hidden])");
  summary.operatorHiddenFromTenant = await page.locator("#view-operator").isHidden();
  summary.tenantOnAdmin = await page.evaluate(async (key) => (await fetch("/admin/tenants",
    { headers: { authorization: `Bearer ${key}` } })).status, env.TENANT_KEY);
  summary.tenantOnOthers = await page.evaluate(async ([key, other]) => (await fetch(
    `/v1/adapters/${encodeURIComponent(other)}`, { headers: { authorization: `Bearer ${key}` } })).status,
  [env.TENANT_KEY, env.OTHER_ADAPTER]);

  // A narrow window: nothing but the tables scrolls sideways.
  await page.setViewportSize({ width: 390, height: 800 });
  summary.narrowOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await shot("adapters-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });

  // The operator: tenants, keys issued (shown once) and revoked, backends and encoders.
  await page.click("#sign-out");
  await page.waitForSelector("#view-sign-in:not([hidden])");
  await page.fill("#key", env.ADMIN_KEY);
  await page.click("#sign-in-form button");
  await page.waitForSelector("#view-operator:not([hidden]) #tenants-table tbody tr");
  await page.fill("#tenant-new", "newco");
  await page.click("#tenant-form button");
  await page.waitForFunction(() => [...document.querySelectorAll("#tenants-table tbody tr")].some((r) =>
    r.cells[0].textContent === "newco"));
  const newco = page.locator("#tenants-table tbody tr").filter({ has: page.locator("td:first-child",
    { hasText: /^newco$/ }) });
  await newco.getByRole("button", { name: "disable" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("#tenants-table tbody tr")].some((r) =>
    r.cells[0].textContent === "newco" && r.cells[1].textContent === "disabled"));
  await newco.getByRole("button", { name: "enable" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("#tenants-table tbody tr")].some((r) =>
    r.cells[0].textContent === "newco" && r.cells[1].textContent === "enabled"));
  summary.disabledAndEnabled = true;
  await page.selectOption("#keys-tenant", "newco");
  await page.waitForFunction(() => document.querySelector("#keys-table tbody").children.length === 0);
  await page.click("#key-issue");
  await page.waitForSelector("#key-issued:not([hidden])");
  summary.issuedKeyPrefix = (await page.textContent("#key-value")).slice(0, 5);
  await page.waitForSelector("#keys-table tbody tr");
  await page.locator("#keys-table tbody tr").first().getByRole("button", { name: "revoke" }).click();
  await page.waitForFunction(() => document.querySelector("#keys-table tbody tr").cells[2].textContent === "revoked");
  summary.tenants = await page.$$eval("#tenants-table tbody tr", (rs) => rs.map((r) => r.cells[0].textContent));
  summary.backends = await page.$$eval("#backends-table tbody tr", (rs) => rs.map((r) => r.cells[1].textContent));
  summary.encoders = await page.$$eval("#encoders-table tbody tr", (rs) => rs.map((r) => r.cells[0].textContent));
  await page.waitForSelector("#operator-usage-table tbody tr");
  summary.operatorUsage = await page.$$eval("#operator-usage-table tbody tr", (rs) =>
    rs.map((r) => r.cells[0].textContent));
  await page.waitForFunction(() => [...document.querySelectorAll("#tenants-table tbody tr")].every((r) =>
    r.cells[4].textContent.length > 0));
  summary.tenantLimits = await page.$$eval("#tenants-table tbody tr", (rs) => rs.map((r) => r.cells[4].textContent));
  await shot("operator");
  summary.pageErrors = failures;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary));
