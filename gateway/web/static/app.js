// Car Build storefront. Plain ES module, no dependencies: it talks to the
// gateway's canonical /v1 REST API on the same origin. Money is kept as
// integer minor units (BigInt centavos) and only formatted for display.

// Rules the page enforces before asking the server (the server enforces them
// again; these only keep the shopper from building a basket it would refuse).
const MAX_PER_PART = 4;
const MAX_CHASSIS = 1;
const CHASSIS = 'PART_CATEGORY_CHASSIS';
// Shipping is free when the subtotal is strictly above this (R$ 10.000,00).
const FREE_SHIPPING_ABOVE = 1_000_000n;
const QUOTE_DEBOUNCE_MS = 250;
const REQUEST_TIMEOUT_MS = 15_000;
const PAGE_SIZE = 50;
const MAX_PAGES = 100;

const CATEGORY_NAMES = {
  PART_CATEGORY_CHASSIS: 'Chassi',
  PART_CATEGORY_ENGINE: 'Motor',
  PART_CATEGORY_WHEELS: 'Rodas',
  PART_CATEGORY_HEADLIGHT: 'Farol',
  PART_CATEGORY_BUMPER: 'Para-choque',
  PART_CATEGORY_HOOD: 'Capô',
  PART_CATEGORY_SPOILER: 'Aerofólio',
  PART_CATEGORY_HYBRID_SYSTEM: 'Sistema híbrido',
};
// The same enum by number, in case the gateway is set to emit enum numbers.
const CATEGORY_BY_NUMBER = Object.keys(CATEGORY_NAMES);

const STEPS = ['cars', 'parts', 'cart', 'done'];

// ---------------------------------------------------------------- helpers

const $ = (id) => document.getElementById(id);

/** h builds an element: h('p', {class: 'x'}, 'text', child). Text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const moneyFormats = new Map();

/** minor returns a Money message's amount as BigInt minor units (absent = 0, as proto3 JSON omits zeros). */
function minor(money) {
  const v = money?.minorUnits ?? money?.minor_units ?? '0';
  return BigInt(v);
}

/** formatMinor formats BigInt minor units exactly (no float) as "R$ 8.745,00". */
function formatMinor(units, currency = 'BRL') {
  let f = moneyFormats.get(currency);
  if (!f) {
    f = new Intl.NumberFormat('pt-BR', { style: 'currency', currency });
    moneyFormats.set(currency, f);
  }
  const neg = units < 0n;
  const abs = neg ? -units : units;
  // Intl formats decimal strings exactly.
  return f.format(`${neg ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`);
}

function currencyOf(money) {
  return money?.currencyCode || money?.currency_code || 'BRL';
}

/** moneyEl renders an amount with its exact minor units in data-minor-units. */
function moneyEl(tag, money, attrs = {}) {
  return h(tag, { ...attrs, 'data-minor-units': minor(money).toString() }, formatMinor(minor(money), currencyOf(money)));
}

function formatDate(rfc3339) {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339 || '—';
  return new Intl.DateTimeFormat('pt-BR', { dateStyle: 'long', timeStyle: 'medium' }).format(d);
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** newKey returns a random UUID; crypto.randomUUID needs a secure context, getRandomValues does not. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function categoryOf(part) {
  const c = part.category;
  return typeof c === 'number' ? CATEGORY_BY_NUMBER[c - 1] ?? 'PART_CATEGORY_UNSPECIFIED' : c ?? 'PART_CATEGORY_UNSPECIFIED';
}

// ---------------------------------------------------------------- API

const STATUS_BY_HTTP = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS', 412: 'FAILED_PRECONDITION', 429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED',
  500: 'INTERNAL', 501: 'UNIMPLEMENTED', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};

/** ApiError is a failed call: HTTP code (0 when no answer), status name and the server's message. */
class ApiError extends Error {
  constructor(code, status, message) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

async function api(method, path, body, signal, headers) {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const init = {
    method,
    headers: { Accept: 'application/json', ...headers },
    cache: 'no-store',
    signal: signal && AbortSignal.any ? AbortSignal.any([signal, timeout]) : signal ?? timeout,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  let text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (err) {
    if (signal?.aborted) throw err; // superseded by a newer request: not an error to show
    if (err.name === 'TimeoutError' || timeout.aborted) {
      throw new ApiError(0, 'TIMEOUT', `sem resposta em ${REQUEST_TIMEOUT_MS / 1000} s`);
    }
    throw new ApiError(0, 'NETWORK', err.message);
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page, say): handled below.
  }
  if (!res.ok) {
    const status = typeof data?.status === 'string' ? data.status : STATUS_BY_HTTP[res.status] ?? 'UNKNOWN';
    throw new ApiError(res.status, status, data?.message || res.statusText || `HTTP ${res.status}`);
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(res.status, 'BAD_RESPONSE', 'a resposta do servidor não é JSON');
  }
  return data;
}

const isAbort = (err) => err?.name === 'AbortError';
/** transient says whether trying the same request again may work. */
const transient = (err) => err instanceof ApiError
  && ['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'INTERNAL', 'UNKNOWN', 'BAD_RESPONSE'].includes(err.status);
const mentionsChassis = (msg) => /chassi/i.test(msg);
const mentionsPriceChange = (msg) => /total|price|preç/i.test(msg);

/** explain turns an error into a sentence for the shopper; `what` is the action that failed. */
function explain(err, what) {
  if (!(err instanceof ApiError)) return `Erro inesperado na página: ${err.message}`;
  const msg = err.message;
  switch (err.status) {
    case 'NETWORK':
      return 'Não foi possível falar com o servidor. Verifique a sua conexão e tente de novo.';
    case 'TIMEOUT':
    case 'DEADLINE_EXCEEDED':
      return 'O servidor demorou demais para responder. Tente de novo em instantes.';
    case 'UNAVAILABLE':
      return 'O serviço está temporariamente indisponível. Tente de novo em instantes.';
    case 'RESOURCE_EXHAUSTED':
      return 'Muitas requisições neste momento. Aguarde alguns segundos e tente de novo.';
    case 'INVALID_ARGUMENT':
      if (what === 'get-order') return 'Este número de pedido não é válido. Confira o link.';
      if (mentionsChassis(msg)) return 'Só é permitido um chassi por pedido. Ajuste as quantidades.';
      return 'O pedido tem dados inválidos. Ajuste as quantidades e tente de novo.';
    case 'FAILED_PRECONDITION':
      if (what === 'order' && mentionsPriceChange(msg)) {
        return 'Os preços mudaram desde o seu orçamento. Atualizamos o total: confira os valores e finalize de novo.';
      }
      return 'Não foi possível concluir a operação no estado atual.';
    case 'NOT_FOUND':
      if (what === 'parts') return 'Este carro não está mais no catálogo. Escolha outro.';
      if (what === 'get-order') return 'Pedido não encontrado.';
      if (what === 'cars') return 'O catálogo de carros não foi encontrado no servidor.';
      return 'Uma das peças escolhidas não está mais no catálogo. Recarregue as peças.';
    case 'ALREADY_EXISTS':
    case 'ABORTED':
      return 'Este envio já foi usado para um pedido diferente. Preparamos um novo envio: finalize de novo.';
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
      return 'Acesso negado pelo servidor.';
    case 'REQUEST_TOO_LARGE':
      return 'O carrinho ficou grande demais para um pedido. Remova alguns itens.';
    case 'BAD_RESPONSE':
      return 'O servidor respondeu de um jeito inesperado. Tente de novo.';
    default:
      return 'O servidor encontrou um erro. Tente de novo mais tarde.';
  }
}

/** showError fills an error box (role=alert) with the explanation, the server's detail and an optional retry. */
function showError(boxId, err, what, retry) {
  const box = $(boxId);
  const detail = err instanceof ApiError
    ? `${err.code ? `HTTP ${err.code} ` : ''}${err.status}: ${err.message}`
    : String(err);
  box.replaceChildren(
    h('p', { class: 'error-box__text' }, explain(err, what)),
    h('p', { class: 'error-box__detail' }, `Detalhe: ${detail}`),
  );
  if (retry) box.append(h('button', { type: 'button', class: 'button', onclick: retry }, 'Tentar de novo'));
  box.dataset.status = err?.status ?? 'ERROR';
}

function clearError(boxId) {
  const box = $(boxId);
  box.replaceChildren();
  delete box.dataset.status;
}

// ---------------------------------------------------------------- state

const state = {
  step: 'cars',
  cars: [],
  car: null,
  parts: [],
  qty: new Map(), // part id -> quantity (> 0 only)
  cartVersion: 0, // bumped on every change to qty
  quote: null,
  quoteVersion: -1, // cartVersion the quote was computed for
  quoteError: null,
  attempt: null, // {sig, key}: one idempotency key per (items, expected total)
  placing: false,
  order: null,
};

let quoteTimer = 0;
let quoteCtl = null;
let quoteDone = Promise.resolve();

const quoteFresh = () => state.quote !== null && state.quoteVersion === state.cartVersion;
const cartItems = () => state.parts
  .filter((p) => state.qty.has(p.id))
  .map((p) => ({ partId: p.id, quantity: state.qty.get(p.id) }));
const cartUnits = () => [...state.qty.values()].reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- steps

function go(step, { focus = true } = {}) {
  state.step = step;
  for (const s of STEPS) $(`step-${s}`).hidden = s !== step;
  for (const li of document.querySelectorAll('.steps li')) {
    if (li.dataset.step === step) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  }
  const title = $(`${step}-title`).textContent;
  document.title = `${title} — Car Build`;
  renderCartButton();
  if (focus) {
    const heading = $(`${step}-title`);
    heading.focus();
    heading.scrollIntoView({ block: 'start' });
  }
}

// ---------------------------------------------------------------- cars

async function loadCars() {
  clearError('cars-error');
  $('cars-status').textContent = 'Carregando carros…';
  $('cars-status').hidden = false;
  try {
    const res = await api('GET', '/v1/cars');
    state.cars = res.cars ?? [];
  } catch (err) {
    $('cars-status').hidden = true;
    showError('cars-error', err, 'cars', loadCars);
    return;
  }
  $('cars-status').hidden = state.cars.length > 0;
  $('cars-status').textContent = state.cars.length ? '' : 'Nenhum carro no catálogo.';
  $('car-list').replaceChildren(...state.cars.map((car) => {
    const first = car.firstYear ?? car.first_year;
    const last = car.lastYear ?? car.last_year;
    const years = first && last && first !== last ? `${first}–${last}` : String(first || last || '');
    return h('li', {},
      h('button', { type: 'button', class: 'car', 'data-car-id': car.id, onclick: () => chooseCar(car) },
        h('span', { class: 'car__name' }, car.name || car.id),
        years ? h('span', { class: 'car__years' }, years) : null));
  }));
}

async function chooseCar(car) {
  if (state.car?.id !== car.id) {
    state.car = car;
    state.parts = [];
    setCart(new Map());
    $('part-list').replaceChildren();
  }
  $('parts-title').textContent = `Peças para o ${car.name || car.id}`;
  go('parts');
  if (state.parts.length === 0) await loadParts();
}

async function loadParts() {
  const car = state.car;
  clearError('parts-error');
  $('parts-status').textContent = 'Carregando peças…';
  $('parts-status').hidden = false;
  const parts = [];
  try {
    let token = '';
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams({ page_size: String(PAGE_SIZE) });
      if (token) q.set('page_token', token);
      const res = await api('GET', `/v1/cars/${encodeURIComponent(car.id)}/parts?${q}`);
      parts.push(...(res.parts ?? []));
      const next = res.nextPageToken ?? res.next_page_token ?? '';
      if (!next || next === token) break;
      token = next;
    }
  } catch (err) {
    if (state.car !== car) return;
    $('parts-status').hidden = true;
    showError('parts-error', err, 'parts', loadParts);
    return;
  }
  if (state.car !== car) return; // the shopper switched cars meanwhile
  state.parts = parts;
  $('parts-status').textContent = parts.length ? '' : 'Nenhuma peça cadastrada para este carro.';
  $('parts-status').hidden = parts.length > 0;
  $('part-list').replaceChildren(...parts.map(partRow));
  renderParts();
}

// ---------------------------------------------------------------- quantities

/** limitFor is the most of a part the basket may hold, given the rest of the basket. */
function limitFor(part) {
  if (categoryOf(part) !== CHASSIS) return MAX_PER_PART;
  let others = 0;
  for (const p of state.parts) {
    if (p.id !== part.id && categoryOf(p) === CHASSIS) others += state.qty.get(p.id) ?? 0;
  }
  return Math.max(0, MAX_CHASSIS - others);
}

function limitMessage(part) {
  return categoryOf(part) === CHASSIS
    ? 'Só é permitido 1 chassi por pedido.'
    : `Máximo de ${MAX_PER_PART} unidades de cada peça.`;
}

function partRow(part) {
  const id = part.id;
  const name = part.name || `Peça ${id}`;
  const input = h('input', {
    id: `qty-${id}`, class: 'qty__input', type: 'number', inputmode: 'numeric',
    min: 0, max: limitFor(part), step: 1, value: 0, 'aria-describedby': `note-${id}`,
  });
  input.addEventListener('input', () => {
    if (input.value.trim() === '') return; // mid-edit; "change" settles it
    setQty(part, Number(input.value), { fromInput: true });
  });
  input.addEventListener('change', () => setQty(part, Number(input.value || 0), { fromInput: true }));
  const category = categoryOf(part);
  return h('li', { class: 'part', 'data-part-id': id, 'data-category': category },
    h('div', { class: 'part__info' },
      h('span', { class: 'part__name', id: `name-${id}` }, name),
      h('span', { class: 'part__category' }, CATEGORY_NAMES[category] ?? 'Peça'),
      moneyEl('span', part.price, { class: 'part__price' })),
    h('div', { class: 'qty', role: 'group', 'aria-labelledby': `name-${id}` },
      h('button', {
        type: 'button', class: 'qty__button', 'data-action': 'dec', 'aria-label': `Diminuir a quantidade de ${name}`,
        onclick: () => setQty(part, (state.qty.get(id) ?? 0) - 1),
      }, '−'),
      h('label', { class: 'visually-hidden', for: `qty-${id}` }, `Quantidade de ${name}`),
      input,
      h('button', {
        type: 'button', class: 'qty__button', 'data-action': 'inc', 'aria-label': `Aumentar a quantidade de ${name}`,
        onclick: () => setQty(part, (state.qty.get(id) ?? 0) + 1),
      }, '+')),
    h('p', { class: 'part__note', id: `note-${id}`, 'aria-live': 'polite' }));
}

/** setQty applies a quantity within the rules; a refused amount is clamped and explained next to the part. */
function setQty(part, wanted, { fromInput = false } = {}) {
  const limit = limitFor(part);
  const current = state.qty.get(part.id) ?? 0;
  let n = Number.isFinite(wanted) ? Math.trunc(wanted) : 0;
  let note = '';
  if (n > limit) {
    n = limit;
    note = limitMessage(part);
  } else if (n < 0) {
    n = 0;
  }
  const row = document.querySelector(`.part[data-part-id="${CSS.escape(part.id)}"]`);
  if (row) row.querySelector('.part__note').textContent = note;
  if (fromInput && row) row.querySelector('.qty__input').value = String(n);
  if (n === current) return;
  const next = new Map(state.qty);
  if (n === 0) next.delete(part.id);
  else next.set(part.id, n);
  setCart(next);
}

function setCart(next) {
  state.qty = next;
  state.cartVersion++;
  state.attempt = null;
  renderParts();
  renderCartButton();
  scheduleQuote();
}

function renderParts() {
  for (const part of state.parts) {
    const row = document.querySelector(`.part[data-part-id="${CSS.escape(part.id)}"]`);
    if (!row) continue;
    const n = state.qty.get(part.id) ?? 0;
    const limit = limitFor(part);
    const input = row.querySelector('.qty__input');
    if (document.activeElement !== input || input.value.trim() !== '') input.value = String(n);
    input.max = String(limit);
    // aria-disabled (not disabled) keeps the button focusable for keyboard
    // users; pressing it at the limit explains the limit instead.
    row.querySelector('[data-action="dec"]').setAttribute('aria-disabled', String(n <= 0));
    row.querySelector('[data-action="inc"]').setAttribute('aria-disabled', String(n >= limit));
    row.classList.toggle('part--selected', n > 0);
  }
}

function renderCartButton() {
  const units = cartUnits();
  const button = $('cart-button');
  $('cart-count').textContent = String(units);
  button.setAttribute('aria-label', `Carrinho: ${plural(units, 'item', 'itens')}`);
  button.setAttribute('aria-disabled', String(units === 0 || state.step === 'done'));
  $('to-cart').setAttribute('aria-disabled', String(units === 0));
}

// ---------------------------------------------------------------- quote

function scheduleQuote() {
  clearTimeout(quoteTimer);
  quoteCtl?.abort();
  renderQuote();
  if (state.qty.size === 0) {
    state.quote = null;
    state.quoteError = null;
    state.quoteVersion = state.cartVersion;
    renderQuote();
    return;
  }
  quoteTimer = setTimeout(() => { quoteDone = requestQuote(); }, QUOTE_DEBOUNCE_MS);
}

/** refreshQuote asks for the quote now (skipping the debounce) and resolves once it is in. */
function refreshQuote() {
  if (state.qty.size === 0) return Promise.resolve();
  if (quoteFresh()) return Promise.resolve();
  clearTimeout(quoteTimer);
  if (!quoteCtl || quoteCtl.signal.aborted || state.quoteError) quoteDone = requestQuote();
  return quoteDone;
}

async function requestQuote() {
  clearTimeout(quoteTimer);
  quoteCtl?.abort();
  const ctl = new AbortController();
  quoteCtl = ctl;
  const version = state.cartVersion;
  state.quoteError = null;
  renderQuote();
  try {
    const quote = await api('POST', '/v1/quotes', { items: cartItems() }, ctl.signal);
    if (version !== state.cartVersion) return;
    state.quote = quote;
    state.quoteVersion = version;
  } catch (err) {
    if (isAbort(err) || ctl.signal.aborted || version !== state.cartVersion) return;
    state.quoteError = err;
  } finally {
    if (quoteCtl === ctl) quoteCtl = null;
  }
  renderQuote();
}

function quoteState() {
  if (state.qty.size === 0) return 'empty';
  if (state.quoteError) return 'error';
  return quoteFresh() ? 'fresh' : 'pending';
}

function totalsList(q, idPrefix) {
  const free = q.freeShipping ?? q.free_shipping ?? minor(q.shipping) === 0n;
  return h('dl', { class: 'totals' },
    h('div', { class: 'totals__row' },
      h('dt', {}, 'Subtotal'), moneyEl('dd', q.subtotal, { id: `${idPrefix}-subtotal` })),
    h('div', { class: 'totals__row' },
      h('dt', {}, 'Frete'),
      free
        ? h('dd', { id: `${idPrefix}-shipping`, 'data-minor-units': minor(q.shipping).toString() }, 'Grátis')
        : moneyEl('dd', q.shipping, { id: `${idPrefix}-shipping` })),
    h('div', { class: 'totals__row totals__row--total' },
      h('dt', {}, 'Total'), moneyEl('dd', q.total, { id: `${idPrefix}-total` })));
}

function shippingHint(q) {
  if (q.freeShipping ?? q.free_shipping) {
    return h('p', { class: 'hint hint--ok', id: 'quote-hint' },
      `Frete grátis: o subtotal passou de ${formatMinor(FREE_SHIPPING_ABOVE)}.`);
  }
  const missing = FREE_SHIPPING_ABOVE - minor(q.subtotal);
  if (missing < 0n) return ''; // the server decides; no hint if the rule has changed
  return h('p', { class: 'hint', id: 'quote-hint', 'data-missing-minor-units': missing.toString() },
    `Faltam mais de ${formatMinor(missing, currencyOf(q.subtotal))} em peças para o frete grátis `
    + `(subtotal acima de ${formatMinor(FREE_SHIPPING_ABOVE)}).`);
}

function renderQuote() {
  const st = quoteState();
  const box = $('quote');
  box.dataset.state = st;
  box.setAttribute('aria-busy', String(st === 'pending'));
  $('quote-pending').hidden = st !== 'pending';
  const shown = st === 'pending' && box.dataset.shown === 'fresh' ? 'fresh' : st;
  box.dataset.shown = shown;
  if (st === 'empty') {
    box.replaceChildren(h('p', { class: 'quote__empty' }, 'Seu carrinho está vazio. Escolha as quantidades das peças.'));
  } else if (shown === 'pending') {
    box.replaceChildren(h('p', { class: 'quote__empty' }, 'Calculando o orçamento…'));
  } else if (st === 'error') {
    box.replaceChildren();
    const err = h('div', { class: 'error-box', role: 'alert', id: 'quote-error' });
    box.append(err);
    showError('quote-error', state.quoteError, 'quote', () => { quoteDone = requestQuote(); });
  } else if (st === 'fresh') {
    // Pending keeps the last numbers on screen, dimmed and untouched, so the
    // live region speaks once per settled quote rather than per keystroke.
    const q = state.quote;
    box.replaceChildren(
      h('p', { class: 'quote__units' }, plural(cartUnits(), 'item', 'itens')),
      totalsList(q, 'quote'),
      shippingHint(q));
  }
  box.classList.toggle('quote__body--stale', st === 'pending');
  if (state.step === 'cart') renderCart();
}

// ---------------------------------------------------------------- cart

async function openCart() {
  if (state.qty.size === 0) return;
  clearError('cart-error');
  go('cart');
  renderCart();
  await refreshQuote();
}

function renderCart() {
  const st = quoteState();
  const box = $('cart');
  box.dataset.state = st;
  const checkout = $('checkout');
  const ready = st === 'fresh' && !state.placing;
  checkout.setAttribute('aria-disabled', String(!ready));
  checkout.textContent = state.placing
    ? 'Enviando pedido…'
    : ready ? `Finalizar compra — ${formatMinor(minor(state.quote.total), currencyOf(state.quote.total))}` : 'Finalizar compra';
  if (st === 'empty') {
    box.replaceChildren(h('p', {}, 'Seu carrinho está vazio.'),
      h('button', { type: 'button', class: 'button', onclick: () => go('cars') }, 'Escolher peças'));
    return;
  }
  if (st === 'error') {
    box.replaceChildren(h('div', { class: 'error-box', role: 'alert', id: 'cart-quote-error' }));
    showError('cart-quote-error', state.quoteError, 'quote', () => { quoteDone = requestQuote(); });
    return;
  }
  if (st === 'pending' || !state.quote) {
    box.replaceChildren(h('p', { class: 'status', role: 'status' }, 'Calculando o orçamento…'));
    return;
  }
  const q = state.quote;
  box.replaceChildren(
    h('p', { class: 'lead' }, `${state.car?.name ?? ''} · ${plural(cartUnits(), 'item', 'itens')}`),
    linesTable(q.lines ?? [], { removable: true }),
    totalsList(q, 'cart'),
    shippingHint(q));
}

function linesTable(lines, { removable = false } = {}) {
  return h('table', { class: 'lines' },
    h('caption', { class: 'visually-hidden' }, 'Itens'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Peça'),
      h('th', { scope: 'col', class: 'num' }, 'Qtd.'),
      h('th', { scope: 'col', class: 'num unit' }, 'Preço'),
      h('th', { scope: 'col', class: 'num' }, 'Total'),
      removable ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Ações')) : null)),
    h('tbody', {}, lines.map((l) => {
      const id = l.partId ?? l.part_id;
      return h('tr', { 'data-part-id': id },
        h('th', { scope: 'row' }, l.name),
        h('td', { class: 'num' }, String(l.quantity ?? 0)),
        moneyEl('td', l.unitPrice ?? l.unit_price, { class: 'num unit' }),
        moneyEl('td', l.lineTotal ?? l.line_total, { class: 'num' }),
        removable
          ? h('td', {}, h('button', {
            type: 'button', class: 'link-button remove', 'aria-label': `Remover ${l.name} do carrinho`,
            onclick: () => removeLine(id),
          }, h('span', { class: 'remove__text' }, 'Remover'), h('span', { class: 'remove__icon', 'aria-hidden': 'true' }, '✕')))
          : null);
    })));
}

function removeLine(id) {
  if (state.placing) return;
  const next = new Map(state.qty);
  next.delete(id);
  setCart(next);
  $('cart-title').focus(); // the pressed button is gone
}

// ---------------------------------------------------------------- checkout

async function placeOrder() {
  if (state.placing || quoteState() !== 'fresh') return;
  const items = cartItems();
  const expectedTotal = state.quote.total;
  // A retry of the same basket at the same total reuses its key, so a lost
  // response cannot create a second order.
  const sig = JSON.stringify([items, currencyOf(expectedTotal), minor(expectedTotal).toString()]);
  if (state.attempt?.sig !== sig) state.attempt = { sig, key: newKey() };
  const body = {
    idempotencyKey: state.attempt.key,
    items,
    expectedTotal: { currencyCode: currencyOf(expectedTotal), minorUnits: minor(expectedTotal).toString() },
  };
  clearError('cart-error');
  state.placing = true;
  $('checkout').setAttribute('aria-busy', 'true');
  renderCart();
  let order;
  try {
    order = await api('POST', '/v1/orders', body);
  } catch (err) {
    state.placing = false;
    $('checkout').removeAttribute('aria-busy');
    if (err instanceof ApiError && (err.status === 'ALREADY_EXISTS' || err.status === 'ABORTED')) {
      state.attempt = null;
    }
    showError('cart-error', err, 'order', transient(err) ? placeOrder : undefined);
    if (err instanceof ApiError && ['FAILED_PRECONDITION', 'INVALID_ARGUMENT', 'NOT_FOUND'].includes(err.status)) {
      // Prices or the catalog changed under the basket: quote it again.
      state.quoteVersion = -1;
      renderCart();
      quoteDone = requestQuote();
    } else {
      renderCart();
    }
    return;
  }
  state.placing = false;
  $('checkout').removeAttribute('aria-busy');
  if (order.receiptToken) saveReceipt(order.id, order.receiptToken);
  delete order.receiptToken;
  state.order = order;
  state.attempt = null;
  state.qty = new Map();
  state.cartVersion++;
  state.quote = null;
  renderParts();
  renderQuote();
  history.replaceState(null, '', `#pedido/${encodeURIComponent(order.id)}`);
  renderOrder(order, 'post');
  go('done');
  await readBackOrder(order.id);
}

// The shop orders anonymously: the server answers each order with a receipt
// token, the only thing that reads it back (sent as the Order-Receipt
// header). It is kept in this browser's localStorage under the order id, so
// the #pedido/<id> link reopens the order here and nowhere else.
const RECEIPT_PREFIX = 'carbuild.receipt.';

function saveReceipt(id, token) {
  try {
    localStorage.setItem(RECEIPT_PREFIX + id, token);
  } catch {
    // Storage off (private mode, quota): the confirmation still shows now.
  }
}

function loadReceipt(id) {
  try {
    return localStorage.getItem(RECEIPT_PREFIX + id);
  } catch {
    return null;
  }
}

/** readBackOrder shows the order as stored, read back from GET /v1/orders/{id}. */
async function readBackOrder(id) {
  clearError('done-error');
  try {
    const receipt = loadReceipt(id);
    const stored = await api('GET', `/v1/orders/${encodeURIComponent(id)}`, undefined, undefined,
      receipt ? { 'Order-Receipt': receipt } : undefined);
    state.order = stored;
    renderOrder(stored, 'server');
  } catch (err) {
    if ($('order').dataset.source === 'none') $('order').replaceChildren();
    showError('done-error', err, 'get-order', transient(err) ? () => readBackOrder(id) : undefined);
  }
}

const ORDER_STATUS = {
  ORDER_STATUS_CONFIRMED: 'Confirmado',
  ORDER_STATUS_UNSPECIFIED: 'Desconhecida',
  1: 'Confirmado',
};

function renderOrder(order, source) {
  const box = $('order');
  box.dataset.source = source;
  const created = order.createTime ?? order.create_time;
  box.replaceChildren(
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Número do pedido'), h('dd', { id: 'order-id', class: 'mono' }, order.id)),
      h('div', {}, h('dt', {}, 'Data'),
        h('dd', { id: 'order-date' }, h('time', { datetime: created ?? '' }, formatDate(created)))),
      h('div', {}, h('dt', {}, 'Situação'),
        h('dd', { id: 'order-status' }, ORDER_STATUS[order.status] ?? String(order.status ?? '—')))),
    linesTable(order.lines ?? []),
    totalsList(order, 'order'),
    h('p', { class: 'status' }, source === 'server'
      ? 'Dados lidos do servidor: o pedido está registrado.'
      : 'Conferindo o pedido no servidor…'));
}

async function showStoredOrder(id) {
  go('done', { focus: false });
  $('order').dataset.source = 'none';
  $('order').replaceChildren(h('p', { class: 'status' }, 'Carregando pedido…'));
  await readBackOrder(id);
}

// ---------------------------------------------------------------- wiring

function guardDisabled(handler) {
  return (ev) => {
    if (ev.currentTarget.getAttribute('aria-disabled') === 'true') return;
    handler(ev);
  };
}

function init() {
  for (const b of document.querySelectorAll('[data-go]')) {
    b.addEventListener('click', () => go(b.dataset.go));
  }
  $('cart-button').addEventListener('click', guardDisabled(openCart));
  $('to-cart').addEventListener('click', guardDisabled(openCart));
  $('checkout').addEventListener('click', guardDisabled(placeOrder));
  $('new-order').addEventListener('click', () => {
    history.replaceState(null, '', location.pathname);
    clearError('done-error');
    go(state.car ? 'parts' : 'cars');
  });
  // The +/- buttons use aria-disabled; at a limit they explain it instead of acting.
  $('part-list').addEventListener('click', (ev) => {
    const button = ev.target.closest('.qty__button');
    if (!button || button.getAttribute('aria-disabled') !== 'true') return;
    ev.stopImmediatePropagation();
    const row = button.closest('.part');
    const part = state.parts.find((p) => p.id === row.dataset.partId);
    if (part && button.dataset.action === 'inc') row.querySelector('.part__note').textContent = limitMessage(part);
  }, true);
  renderQuote();
  renderCartButton();
  // #pedido/<id> links to a placed order's confirmation.
  const orderInHash = () => /^#pedido\/(.+)$/.exec(location.hash)?.[1];
  window.addEventListener('hashchange', () => {
    const id = orderInHash();
    if (id && decodeURIComponent(id) !== state.order?.id) showStoredOrder(decodeURIComponent(id));
  });
  const id = orderInHash();
  if (id) showStoredOrder(decodeURIComponent(id));
  else go('cars', { focus: false });
  loadCars();
}

init();
