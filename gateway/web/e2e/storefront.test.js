// End-to-end test of the storefront in headless Chromium against a running
// Car Build stack (gateway at CARBUILD_URL). It buys parts through the page
// and checks every number against the pricing rules computed here, then
// reads the order back through the REST API.
//
//   CARBUILD_URL   gateway base URL (default http://127.0.0.1:8000)
//   ARTIFACTS_DIR  where screenshots go (default ./artifacts next to this file)
//   CHROMIUM_PATH  browser binary (default /usr/bin/chromium)
//
// Run with ./run.sh (installs what is missing) or `node --test storefront.test.js`.

import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.CARBUILD_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.resolve(process.env.ARTIFACTS_DIR || path.join(HERE, 'artifacts'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT_MS = 15_000;
const AXE_SOURCE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// ---------------------------------------------------------------- the rules, independently of the page and the server

const FREE_SHIPPING_ABOVE = 1_000_000n; // R$ 10.000,00 in centavos; free when strictly above
const SHIPPING_PER_UNIT = 1_500n; // R$ 15,00
const MIN_SHIPPING = 2_000n; // R$ 20,00

/** price computes subtotal, shipping and total in centavos from [unit price, quantity] pairs. */
function price(lines) {
  const subtotal = lines.reduce((s, [unit, qty]) => s + unit * BigInt(qty), 0n);
  const units = lines.reduce((s, [, qty]) => s + BigInt(qty), 0n);
  let shipping = units * SHIPPING_PER_UNIT;
  if (subtotal > FREE_SHIPPING_ABOVE) shipping = 0n;
  else if (shipping > 0n && shipping < MIN_SHIPPING) shipping = MIN_SHIPPING;
  return { subtotal, shipping, total: subtotal + shipping };
}

const brl = new Intl.NumberFormat('pt-BR', { style: 'currency', currency: 'BRL' });
/** reais formats centavos as the page should ("R$ 8.745,00"), spaces normalised. */
const reais = (c) => norm(brl.format(`${c / 100n}.${String(c % 100n).padStart(2, '0')}`));
const norm = (s) => s.replace(/\s+/g, ' ').trim();
const minor = (money) => BigInt(money?.minorUnits ?? '0');

// ---------------------------------------------------------------- API helpers

async function api(method, urlPath, body, headers = {}) {
  const res = await fetch(BASE + urlPath, {
    method,
    headers: body ? { 'Content-Type': 'application/json', ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${urlPath}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

async function allParts(carId) {
  const parts = [];
  let token = '';
  do {
    const q = new URLSearchParams({ page_size: '3' }); // small pages: pagination is exercised too
    if (token) q.set('page_token', token);
    const res = await api('GET', `/v1/cars/${carId}/parts?${q}`);
    parts.push(...(res.parts ?? []));
    token = res.nextPageToken ?? '';
  } while (token);
  return parts;
}

// ---------------------------------------------------------------- browser helpers

const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser;
let shotNo = 0;

/** shot saves a numbered screenshot of the page into the artifacts dir. */
async function shot(page, name, opts = {}) {
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...opts });
  return file;
}

/** watch collects uncaught page errors and CSP violations; both fail the test. */
function watch(page) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return problems;
}

/**
 * audit runs axe-core's WCAG 2 A/AA rules on the page as it is now and fails
 * on any violation (missing names, contrast, roles, labels...).
 */
async function audit(page, where) {
  // Evaluated through DevTools, so the page's CSP (no eval) does not apply.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const res = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return res.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `accessibility problems on ${where}`);
}

/** quoteNumbers reads the live quote from the page once it is up to date. */
async function quoteNumbers(page, prefix = 'quote') {
  if (prefix === 'quote') await page.locator('#quote[data-state="fresh"]').waitFor();
  const read = async (what) => {
    const el = page.locator(`#${prefix}-${what}`);
    return { minor: BigInt(await el.getAttribute('data-minor-units')), text: norm(await el.innerText()) };
  };
  return { subtotal: await read('subtotal'), shipping: await read('shipping'), total: await read('total') };
}

function assertNumbers(got, want, where) {
  for (const k of ['subtotal', 'shipping', 'total']) {
    assert.equal(got[k].minor, want[k], `${where} ${k} (centavos)`);
    const text = want[k] === 0n && k === 'shipping' ? 'Grátis' : reais(want[k]);
    assert.equal(got[k].text, text, `${where} ${k} as shown`);
  }
}

/** steps runs the its of a describe in order and skips the rest once one fails. */
function stepper(getPage) {
  let failed = false;
  return (name, fn) => it(name, async (t) => {
    if (failed) return t.skip('an earlier step failed');
    try {
      await fn();
    } catch (err) {
      failed = true;
      const page = getPage();
      if (page && !page.isClosed()) await shot(page, `FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
      throw err;
    }
  });
}

// ---------------------------------------------------------------- tests

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  // Drop the previous run's numbered screenshots, and only those.
  for (const f of await readdir(ARTIFACTS)) {
    if (/^\d{2}-[\w-]+\.png$/.test(f)) await rm(path.join(ARTIFACTS, f));
  }
  try {
    await fetch(`${BASE}/v1/cars`, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new Error(`the Car Build stack does not answer at ${BASE} (${err.cause?.code ?? err.message}); `
      + 'start it with `make run` or set CARBUILD_URL');
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, timeout: 30_000 });
});

after(async () => {
  await browser?.close();
});

describe('storefront: buy a chassis and two headlights for a Civic', () => {
  let context;
  let page;
  let problems;
  let cars;
  let chassis;
  let headlight;
  let want;
  let orderId;
  const step = stepper(() => page);

  before(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'pt-BR' });
    context.setDefaultTimeout(TIMEOUT_MS);
    page = await context.newPage();
    problems = watch(page);
  });
  after(async () => {
    await context?.close();
  });

  step('the page lists the cars the API has', async () => {
    cars = (await api('GET', '/v1/cars')).cars;
    assert.ok(cars.length >= 1, 'the API lists no cars');
    const res = await page.goto(`${BASE}/`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /^text\/html/);
    await page.getByRole('heading', { level: 1, name: 'Escolha o seu carro' }).waitFor();
    const buttons = page.locator('#car-list button');
    await buttons.first().waitFor();
    const shown = (await buttons.locator('.car__name').allInnerTexts()).map(norm);
    assert.deepEqual(shown, cars.map((c) => c.name));
    await shot(page, 'cars');
    await audit(page, 'the car list');
  });

  step('choosing Civic shows its parts with BRL prices, and moves focus', async () => {
    const civic = cars.find((c) => c.id === 'civic');
    assert.ok(civic, 'the API has no car "civic"');
    const parts = await allParts('civic');
    chassis = parts.find((p) => p.category === 'PART_CATEGORY_CHASSIS');
    headlight = parts.find((p) => p.name === 'Farol LED');
    assert.ok(chassis && headlight, 'civic has no chassis or no "Farol LED" part');

    await page.getByRole('button', { name: new RegExp(`^${civic.name}\\b`) }).click();
    await page.getByRole('heading', { level: 1, name: `Peças para o ${civic.name}` }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'parts-title', 'focus after choosing a car');
    await page.locator('.part').nth(parts.length - 1).waitFor();
    assert.equal(await page.locator('.part').count(), parts.length, 'every page of parts is shown');
    for (const p of parts) {
      const row = page.locator(`.part[data-part-id="${p.id}"]`);
      assert.equal(norm(await row.locator('.part__name').innerText()), p.name);
      assert.equal(norm(await row.locator('.part__price').innerText()), reais(minor(p.price)), `price of ${p.name}`);
    }
    assert.equal(await page.locator('#quote').getAttribute('data-state'), 'empty');
    await shot(page, 'parts');
  });

  step('Chassi ×1 and Farol LED ×2 give the quote the rules say', async () => {
    await page.getByRole('button', { name: `Aumentar a quantidade de ${chassis.name}` }).click();
    const addHeadlight = page.getByRole('button', { name: `Aumentar a quantidade de ${headlight.name}` });
    await addHeadlight.click();
    await addHeadlight.click();
    assert.equal(await page.getByRole('spinbutton', { name: `Quantidade de ${chassis.name}` }).inputValue(), '1');
    assert.equal(await page.getByRole('spinbutton', { name: `Quantidade de ${headlight.name}` }).inputValue(), '2');

    want = price([[minor(chassis.price), 1], [minor(headlight.price), 2]]);
    // The scenario the product owner wrote down: 8000 + 2 × 350 = 8700; 3 units × 15 = 45; 8745.
    assert.deepEqual(want, { subtotal: 870_000n, shipping: 4_500n, total: 874_500n }, 'seed prices changed?');
    await page.waitForFunction(
      (t) => document.querySelector('#quote[data-state="fresh"] #quote-total')?.dataset.minorUnits === t,
      want.total.toString());
    assertNumbers(await quoteNumbers(page), want, 'quote');
    assert.equal(norm(await page.locator('#quote-total').innerText()), 'R$ 8.745,00');
    const hint = page.locator('#quote-hint');
    assert.equal(await hint.getAttribute('data-missing-minor-units'), String(FREE_SHIPPING_ABOVE - want.subtotal));
    assert.match(norm(await hint.innerText()), /Faltam mais de R\$ 1\.300,00 .*frete grátis/);
    assert.equal(await page.locator('#quote').getAttribute('aria-live'), 'polite');
    assert.equal(norm(await page.locator('#cart-count').innerText()), '3');
    await shot(page, 'quote');
    await audit(page, 'the parts and quote');
  });

  step('a second chassis is refused by the page', async () => {
    const add = page.getByRole('button', { name: `Aumentar a quantidade de ${chassis.name}` });
    assert.equal(await add.getAttribute('aria-disabled'), 'true', '+ is marked disabled at the limit');
    // aria-disabled keeps it focusable: pressing it explains the limit.
    await add.focus();
    await page.keyboard.press('Enter');
    const input = page.getByRole('spinbutton', { name: `Quantidade de ${chassis.name}` });
    assert.equal(await input.inputValue(), '1');
    assert.equal(await input.getAttribute('max'), '1');
    await input.fill('2');
    assert.equal(await input.inputValue(), '1', 'typing 2 is clamped to 1');
    const note = page.locator(`.part[data-part-id="${chassis.id}"] .part__note`);
    assert.match(await note.innerText(), /Só é permitido 1 chassi por pedido/);
    assertNumbers(await quoteNumbers(page), want, 'quote after the refused chassis');
    await shot(page, 'second-chassis-refused');
  });

  step('the cart shows the lines and the same totals', async () => {
    await page.getByRole('button', { name: 'Revisar carrinho' }).click();
    await page.getByRole('heading', { level: 1, name: 'Seu carrinho' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'cart-title', 'focus on the cart heading');
    const rows = page.locator('#cart tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 2);
    assert.equal(await page.locator(`#cart tr[data-part-id="${chassis.id}"] td`).first().innerText(), '1');
    assert.equal(await page.locator(`#cart tr[data-part-id="${headlight.id}"] td`).first().innerText(), '2');
    assertNumbers(await quoteNumbers(page, 'cart'), want, 'cart');
    await shot(page, 'cart');
    await audit(page, 'the cart');
  });

  step('placing the order shows the confirmation read back from the server', async () => {
    const checkout = page.getByRole('button', { name: /^Finalizar compra/ });
    assert.equal(norm(await checkout.innerText()), `Finalizar compra — ${reais(want.total)}`);
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/v1/orders') && r.method() === 'POST'),
      checkout.click(),
    ]);
    const sent = request.postDataJSON();
    assert.match(sent.idempotencyKey, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(sent.expectedTotal.minorUnits, want.total.toString());
    await page.getByRole('heading', { level: 1, name: 'Pedido confirmado' }).waitFor();
    await page.locator('#order[data-source="server"]').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'done-title', 'focus on the confirmation heading');
    orderId = norm(await page.locator('#order-id').innerText());
    assert.ok(orderId.length >= 8, `order id "${orderId}"`);
    assertNumbers(await quoteNumbers(page, 'order'), want, 'confirmation');
    assert.equal(norm(await page.locator('#order-status').innerText()), 'Confirmado');
    const when = new Date(await page.locator('#order-date time').getAttribute('datetime'));
    assert.ok(Math.abs(Date.now() - when.getTime()) < 10 * 60_000, `order date ${when.toISOString()} is not now`);
    assert.match(page.url(), new RegExp(`#pedido/${orderId}$`));
    await shot(page, 'confirmation');
    await audit(page, 'the confirmation');
  });

  step('the order exists in the API with the same total, readable only with its receipt', async () => {
    const receipt = await page.evaluate((id) => localStorage.getItem(`carbuild.receipt.${id}`), orderId);
    assert.match(receipt ?? '', /^[A-Za-z0-9_-]{43}$/, 'the page kept the receipt token of its anonymous order');
    const without = await fetch(`${BASE}/v1/orders/${encodeURIComponent(orderId)}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    assert.equal(without.status, 404, 'an anonymous order is not readable without its receipt');
    const order = await api('GET', `/v1/orders/${encodeURIComponent(orderId)}`, undefined, { 'Order-Receipt': receipt });
    assert.equal(order.id, orderId);
    assert.equal(order.status, 'ORDER_STATUS_CONFIRMED');
    assert.equal(minor(order.subtotal), want.subtotal);
    assert.equal(minor(order.shipping), want.shipping);
    assert.equal(minor(order.total), want.total);
    const lines = Object.fromEntries(order.lines.map((l) => [l.partId, l.quantity]));
    assert.deepEqual(lines, { [chassis.id]: 1, [headlight.id]: 2 });
  });

  step('reloading the confirmation link shows the stored order', async () => {
    await page.reload();
    await page.locator('#order[data-source="server"]').waitFor();
    assert.equal(norm(await page.locator('#order-id').innerText()), orderId);
    assertNumbers(await quoteNumbers(page, 'order'), want, 'reloaded confirmation');
    assert.deepEqual(problems, []);
  });
});

describe('storefront: errors the API returns are explained', () => {
  let context;
  let page;
  let problems;
  const step = stepper(() => page);

  before(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'pt-BR' });
    context.setDefaultTimeout(TIMEOUT_MS);
    page = await context.newPage();
    problems = watch(page);
    await page.goto(`${BASE}/`);
    await page.getByRole('button', { name: /^Civic\b/ }).click();
    await page.getByRole('button', { name: 'Aumentar a quantidade de Farol LED' }).click();
    await page.locator('#quote[data-state="fresh"]').waitFor();
  });
  after(async () => {
    await context?.close();
  });

  step('the server refusing two chassis (request altered in flight) is shown as the chassis rule', async () => {
    // The page never asks for two chassis; rewrite its request so the real
    // server answers 400 INVALID_ARGUMENT, and check what the shopper reads.
    const chassisId = await page.locator('.part[data-category="PART_CATEGORY_CHASSIS"]').getAttribute('data-part-id');
    await page.route('**/v1/quotes', async (route) => {
      const body = route.request().postDataJSON();
      body.items = body.items.filter((i) => i.partId !== chassisId).concat([{ partId: chassisId, quantity: 2 }]);
      await route.continue({ postData: JSON.stringify(body) });
    });
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/quotes')),
      page.getByRole('button', { name: 'Aumentar a quantidade de Farol LED' }).click(),
    ]);
    assert.equal(res.status(), 400);
    assert.equal((await res.json()).status, 'INVALID_ARGUMENT');
    await page.locator('#quote[data-state="error"]').waitFor();
    assert.match(await page.locator('#quote-error').innerText(), /Só é permitido um chassi por pedido/);
    assert.doesNotMatch(await page.locator('#quote-error').innerText(), /\b(null|undefined|NaN)\b/);
    assert.equal(await page.locator('#quote-error').getAttribute('role'), 'alert');
    await shot(page, 'error-two-chassis');
    await page.unroute('**/v1/quotes');
    await page.getByRole('button', { name: 'Tentar de novo' }).click();
    await page.locator('#quote[data-state="fresh"]').waitFor();
  });

  step('"prices changed" from the server is explained and the cart is quoted again', async () => {
    await page.getByRole('button', { name: 'Revisar carrinho' }).click();
    const checkout = page.getByRole('button', { name: /^Finalizar compra/ });
    await page.locator('#cart[data-state="fresh"]').waitFor();
    const total = BigInt(await page.locator('#cart-total').getAttribute('data-minor-units'));
    // Pretend the page was quoted R$ 1,00 less than the catalog now says: the
    // real server must refuse the order as "prices changed".
    await page.route('**/v1/orders', async (route) => {
      const body = route.request().postDataJSON();
      body.expectedTotal.minorUnits = String(total - 100n);
      await route.continue({ postData: JSON.stringify(body) });
    });
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/orders')),
      checkout.click(),
    ]);
    await page.unroute('**/v1/orders');
    assert.equal(res.status(), 400);
    assert.equal((await res.json()).status, 'FAILED_PRECONDITION');
    const alert = page.locator('#cart-error');
    await alert.getByText('Os preços mudaram').waitFor();
    assert.doesNotMatch(await alert.innerText(), /\b(null|undefined|NaN)\b/);
    await page.locator('#cart[data-state="fresh"]').waitFor();
    await shot(page, 'error-prices-changed');
    await audit(page, 'the cart with an error');
  });

  step('a lost answer is retried with the same idempotency key and gives one order', async () => {
    // The request reaches the real server (which stores the order) but the
    // page is told 503 UNAVAILABLE, as if the answer was lost on the way.
    const keys = [];
    let firstId;
    await page.route('**/v1/orders', async (route) => {
      keys.push(route.request().postDataJSON().idempotencyKey);
      const real = await route.fetch();
      if (keys.length === 1) {
        firstId = (await real.json()).id;
        await route.fulfill({ status: 503, contentType: 'application/json',
          body: JSON.stringify({ code: 503, status: 'UNAVAILABLE', message: 'connection to pricing lost (simulated)' }) });
      } else {
        await route.fulfill({ response: real });
      }
    });
    await page.getByRole('button', { name: /^Finalizar compra/ }).click();
    const alert = page.locator('#cart-error');
    await alert.getByText('temporariamente indisponível').waitFor();
    await shot(page, 'error-unavailable');
    await alert.getByRole('button', { name: 'Tentar de novo' }).click();
    await page.locator('#order[data-source="server"]').waitFor();
    await page.unroute('**/v1/orders');
    assert.equal(keys.length, 2);
    assert.equal(keys[1], keys[0], 'the retry reuses the idempotency key');
    assert.ok(firstId, 'the first attempt created an order');
    assert.equal(norm(await page.locator('#order-id').innerText()), firstId, 'the retry returns the same order');
  });

  step('a link to an order that does not exist says so', async () => {
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('/v1/orders/')),
      page.goto(`${BASE}/#pedido/${crypto.randomUUID()}`),
    ]);
    assert.equal(res.status(), 404);
    await page.locator('#done-error').getByText('Pedido não encontrado').waitFor();
    assert.equal(await page.locator('#order-id').count(), 0, 'no order is shown');
    await shot(page, 'error-unknown-order');
    assert.deepEqual(problems, []);
  });
});

describe('storefront on a phone-sized screen, dark scheme', () => {
  let context;
  let page;
  const step = stepper(() => page);

  before(async () => {
    context = await browser.newContext({
      viewport: { width: 360, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'pt-BR',
      colorScheme: 'dark', // the light scheme is audited above
    });
    context.setDefaultTimeout(TIMEOUT_MS);
    page = await context.newPage();
  });
  after(async () => {
    await context?.close();
  });

  step('the shop fits the width and the quote stays in view', async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole('button', { name: /^Civic\b/ }).tap();
    await page.getByRole('button', { name: 'Aumentar a quantidade de Chassi' }).tap();
    await page.getByRole('button', { name: 'Aumentar a quantidade de Farol LED' }).tap();
    await page.locator('#quote[data-state="fresh"]').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    assert.ok(await page.locator('#quote-total').isVisible());
    const box = await page.locator('#to-cart').boundingBox();
    assert.ok(box && box.y + box.height <= 780, 'the cart button is on screen');
    await shot(page, 'phone', { fullPage: false });
    await audit(page, 'the phone layout');
  });

  step('the keyboard alone can reach and use the quantity controls', async () => {
    await page.keyboard.press('Shift+Tab'); // away from the last tapped control, then back
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.equal(focused, 'Aumentar a quantidade de Farol LED');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#cart-count')?.textContent === '3');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => document.querySelector('#cart-count')?.textContent === '4');
  });

  step('shipping is free above R$ 10.000,00 of subtotal', async () => {
    // The basket is now Chassi ×1 and Farol LED ×3; an engine takes it past the threshold.
    const parts = await allParts('civic');
    const byName = Object.fromEntries(parts.map((p) => [p.name, p]));
    const engine = parts.find((p) => p.category === 'PART_CATEGORY_ENGINE');
    const want = price([[minor(byName.Chassi.price), 1], [minor(byName['Farol LED'].price), 3], [minor(engine.price), 1]]);
    assert.ok(want.subtotal > FREE_SHIPPING_ABOVE && want.shipping === 0n, 'the basket should ship free');
    await page.getByRole('button', { name: `Aumentar a quantidade de ${engine.name}` }).tap();
    await page.waitForFunction(
      (t) => document.querySelector('#quote[data-state="fresh"] #quote-total')?.dataset.minorUnits === t,
      want.total.toString());
    assertNumbers(await quoteNumbers(page), want, 'free-shipping quote');
    assert.match(norm(await page.locator('#quote-hint').innerText()), /^Frete grátis/);
    await shot(page, 'phone-free-shipping', { fullPage: false });
  });

  step('the cart fits the phone too', async () => {
    await page.getByRole('button', { name: 'Revisar carrinho' }).tap();
    await page.locator('#cart[data-state="fresh"]').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the cart is ${overflow}px wider than the phone`);
    assert.ok(await page.getByRole('button', { name: 'Remover Farol LED do carrinho' }).isVisible());
    await shot(page, 'phone-cart');
    await audit(page, 'the phone cart');
  });
});
