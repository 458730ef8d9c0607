// The browser judge: headless Chromium (Debian's) driven by Playwright
// loads pages from a running appliance and checks what a visitor gets.
//
//   node bench/browser/judge.mjs SHOTDIR URL...
//
// For each URL: the page renders (a screenshot of HTTPS pages is saved), every
// response is 200 (no request fails), text subresources arrive
// compressed and decode (scripts run, styles apply), HTTPS pages come
// over HTTP/2, the console has no errors; a reload revalidates with 304s
// instead of refetching; a page with a link to another is clicked
// through. HOME must hold an NSS database that trusts the appliance's
// local CA (certutil), so certificates are verified as a user's
// browser would.
import { chromium } from 'playwright-core';

const [shotDir, ...urls] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failures = 0;
const fail = (msg) => { failures++; console.log('  FAIL ' + msg); };

for (const url of urls) {
  console.log(url);
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // responseReceived reports a revalidated document as 200 (the cached
  // response); responseReceivedExtraInfo has the status on the wire.
  let responses = [];
  const wire = new Map();
  cdp.on('Network.responseReceivedExtraInfo', (e) => wire.set(e.requestId, e.statusCode));
  cdp.on('Network.responseReceived', (e) => responses.push({
    id: e.requestId, url: e.response.url, status: e.response.status, protocol: e.response.protocol,
    encoding: Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1] || '',
    type: e.type, fromCache: e.response.fromDiskCache || e.response.fromMemoryCache || e.response.fromServiceWorker,
    get wire() { return wire.get(this.id) ?? (this.fromCache ? 0 : this.status); },
  }));
  cdp.on('Network.loadingFailed', (e) => { if (!e.canceled) fail(`request failed: ${e.errorText} (${e.type})`); });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  const res = await page.goto(url, { waitUntil: 'networkidle' });
  if (!res || res.status() !== 200) fail(`document status ${res && res.status()}`);
  const secure = url.startsWith('https:');
  if (secure) { // the HTTP pages render the same
    await page.screenshot({ path: `${shotDir}/screenshot-${new URL(url).hostname.split('.')[0]}.png`, fullPage: true });
  }
  for (const r of responses) {
    if (r.status !== 200) fail(`${r.url}: status ${r.status}`);
    if (secure && r.protocol !== 'h2') fail(`${r.url}: ${r.protocol}, want h2`);
  }
  const text = responses.filter((r) => ['Document', 'Stylesheet', 'Script'].includes(r.type));
  const compressed = text.filter((r) => ['br', 'zstd', 'gzip'].includes(r.encoding));
  if (compressed.length === 0) fail('no text response came compressed');
  // Compressed subresources decoded: the styles apply, the script ran.
  const rendered = await page.evaluate(() => ({
    styled: getComputedStyle(document.body).fontFamily !== '' && document.styleSheets.length > 0 &&
      [...document.styleSheets].every((s) => s.cssRules.length > 0),
    script: document.documentElement.dataset.js || '',
    title: document.title,
    links: [...document.querySelectorAll('a[href^="/"]')].map((a) => a.getAttribute('href')),
  }));
  if (!rendered.styled) fail('a stylesheet did not apply');
  if (errors.length) fail('console errors: ' + errors.join(' | '));
  console.log(`  ${responses.length} responses (${responses.map((r) => r.protocol).filter((v, i, a) => a.indexOf(v) === i).join(',')}), ` +
    `${compressed.length} of ${text.length} text responses compressed (${[...new Set(compressed.map((r) => r.encoding))].join(',')}), ` +
    `title "${rendered.title}"${rendered.script ? ', script ran: ' + rendered.script : ''}`);

  // Reload: the browser revalidates, the server answers 304.
  responses = [];
  await page.reload({ waitUntil: 'networkidle' });
  const revalidated = responses.filter((r) => r.wire === 304).length;
  const refetched = responses.filter((r) => r.wire === 200);
  if (refetched.length) fail('reload refetched: ' + refetched.map((r) => r.url).join(' '));
  if (revalidated === 0) fail('reload made no conditional request');
  console.log(`  reload: ${revalidated} responses 304, ${refetched.length} refetched`);

  // Follow the first internal link, as a visitor would.
  if (rendered.links.length) {
    responses = [];
    await Promise.all([page.waitForLoadState('networkidle'), page.click(`a[href="${rendered.links[0]}"]`)]);
    const doc = responses.find((r) => r.type === 'Document');
    if (!doc || doc.status !== 200) fail(`link ${rendered.links[0]}: ${doc && doc.status}`);
    console.log(`  link ${rendered.links[0]}: ${doc && doc.status}, "${await page.title()}"`);
  }
  await context.close();
}
await browser.close();
console.log(failures ? `browser: FAIL (${failures} problems)` : `browser: PASS (${urls.length} pages)`);
process.exit(failures ? 1 : 0);
