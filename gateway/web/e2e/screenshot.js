// Regenerates the README's picture of the storefront (docs/img/storefront.png)
// from a running stack: a Civic with Chassi ×1 and Farol LED ×2 and its quote.
//
//   node screenshot.js [output.png]     (CARBUILD_URL, CHROMIUM_PATH as for the test)

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.CARBUILD_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] || path.join(HERE, '../../../docs/img/storefront.png'));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 }, locale: 'pt-BR', colorScheme: 'light' });
  page.setDefaultTimeout(15_000);
  await page.goto(`${BASE}/`);
  await page.getByRole('button', { name: /^Civic\b/ }).click();
  await page.getByRole('button', { name: 'Aumentar a quantidade de Chassi' }).click();
  await page.getByRole('button', { name: 'Aumentar a quantidade de Farol LED' }).click();
  await page.getByRole('button', { name: 'Aumentar a quantidade de Farol LED' }).click();
  await page.locator('#quote[data-state="fresh"]').waitFor();
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
}
