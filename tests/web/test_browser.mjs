// The chat page in a real headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// type a message, see the reply arrive streamed (text/event-stream) and the stop button go idle.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { args, startServer } from './serve_util.mjs';

const { exe, model } = args();
const server = await startServer(exe, model);
let browser = null, failed = false;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const page = await browser.newPage();
  const streamed = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/v1/chat/completions')) streamed.push(r.headers()['content-type'] || '');
  });
  await page.goto(server.url + '/');
  assert.equal(await page.title(), 'wkv chat');
  await page.locator('details#settings summary').click();
  await page.fill('#temperature', '0');
  await page.fill('#max_tokens', '30');
  await page.fill('#input', 'Hello there');
  await page.click('#send');
  await page.waitForSelector('.msg.user');
  assert.equal(await page.textContent('.msg.user'), 'Hello there');
  // The reply is done when the streaming marker goes away and Send is enabled again.
  await page.waitForSelector('.msg.assistant:not(.streaming)', { timeout: 30000 });
  await page.waitForFunction(() => !document.getElementById('send').disabled);
  const reply = await page.textContent('.msg.assistant');
  assert.ok(reply.length > 0, 'a reply appeared');
  assert.equal(await page.locator('.msg.error').count(), 0);
  assert.ok(streamed.length === 1 && streamed[0].startsWith('text/event-stream'), 'reply came as a stream: ' + streamed);
  // A second turn keeps the conversation in the page.
  await page.fill('#input', 'And then?');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.msg.assistant:not(.streaming)').length === 2,
                             null, { timeout: 30000 });
  assert.equal(await page.locator('.msg.user').count(), 2);
  console.log('test_browser: streamed reply: ' + JSON.stringify(reply));
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  if (browser) await browser.close();
  const code = await server.stop();
  if (code !== 0) { console.error('wkv serve exited ' + code); failed = true; }
}
process.exit(failed ? 1 : 0);
