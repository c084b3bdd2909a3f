// Headless Chromium (Debian's package) as a user signing in: opens URL, expects the
// provider's login form, fills it as USER / PASSWORD, and waits until the browser is back on
// URL's origin. Prints one JSON line: {"url": the page it ended on, "text": its text}, and
// saves screenshots of the provider's form (SCREENSHOT's name with -form) and of the page. Used by the Rust tests (tests/it/oidc/chromium.rs) and the
// README's walk-through.
//
//   node tests/oidc-provider/browser.mjs URL USER PASSWORD SCREENSHOT
import { chromium } from 'playwright-core';

const [url, user, password, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error('usage: browser.mjs URL USER PASSWORD SCREENSHOT');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  const origin = new URL(url).origin;
  await page.goto(url);
  // The gateway sent the browser to the provider: its login form.
  await page.waitForSelector('input[name="password"]', { timeout: 15000 });
  const formUrl = page.url();
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-form.png') });
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([
    page.waitForURL((u) => u.origin === origin, { timeout: 15000 }),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  await page.screenshot({ path: screenshot, fullPage: true });
  const text = await page.evaluate(() => document.body.innerText);
  console.log(JSON.stringify({ url: page.url(), form: formUrl, text }));
} finally {
  await browser.close();
}
