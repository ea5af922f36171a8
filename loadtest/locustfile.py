"""Car Build shopper journeys for Locust (Debian python3-locust 2.12.1).

A shopper browses the cars, lists a car's parts, quotes a random basket and
places an order with the quoted total. Task weights and think time follow the
earlier system's experiments: browse 1, parts 3, quote 2, order 1, and
1-3 s between tasks.

Either API surface can be driven (option --api or env CARBUILD_API):

  v1      GET /v1/cars, GET /v1/cars/{id}/parts, POST /v1/quotes,
          POST /v1/orders (idempotency key, expected total)
  compat  GET /health, POST /get-pecas, POST /calcular, POST /pagar

Identity: with --issuer (env CARBUILD_ISSUER_URL, which `make run -exec` and
the smoke run set to the dev issuer) every simulated user fetches its own
shopper token (subject locust-<uuid>) from the issuer's /token endpoint and
sends it as a bearer token, so its v1 orders are its own; without it users are
anonymous and read their orders back with the receipt token.

Every response's content is checked, not only its status: parts belong to the
car and have prices; a quote's lines, subtotal, shipping and total are
recomputed here from the listed prices and the business rules; an order must
be confirmed with the quoted total. A failed check is a Locust failure whose
message says what was wrong. Baskets respect the rules (at most one chassis).

With CARBUILD_ORDER_LOG=FILE every confirmed v1 order is appended to FILE as
"id idempotency-key" by the same request event that counts it as a success
in Locust's statistics, so a test can match the orders the database stored
against the ones a client saw confirmed, and the ledger against the count.

With --csv PREFIX, PREFIX_stats.csv and PREFIX_failures.csv are written once
more at exit with the final totals: Locust 2.12 rewrites them only once a
second while it runs, so requests that ended in the last second before exit
(users finishing their task at the stop) were missing from them.

Against an https host whose certificate a private CA signed (the tls
overlay), REQUESTS_CA_BUNDLE=CA-FILE names that CA.

Examples:
  locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 30s \
      --host http://127.0.0.1:8000 --api v1 --only-summary
  # distributed: one master, N workers (custom options travel from the master)
  locust -f loadtest/locustfile.py --master --headless --expect-workers 2 \
      -u 500 -r 100 -t 60s --host http://127.0.0.1:8000 --api compat &
  locust -f loadtest/locustfile.py --worker --master-host 127.0.0.1 &   # x2
"""

import csv
import json
import os
import random
import re
import urllib.parse
import urllib.request
import uuid
from datetime import datetime

import locust.runners
from locust import FastHttpUser, HttpUser, between, events, task
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

# Debian's python3-locust 2.12.1 ships an empty version string (_version.py:
# version = ''), and a master refuses a worker whose "client_ready" message
# carries an empty version ("An old (pre 2.0) worker tried to connect"), so
# distributed runs never start. Master and workers load this file before they
# talk, so naming the version here makes them agree.
if not locust.runners.__version__:
    locust.runners.__version__ = "2.12.1"

CURRENCY = "BRL"

# Business rules (docs/architecture.md), in centavos.
SHIPPING_PER_UNIT = 1500  # R$ 15.00 per unit
SHIPPING_MINIMUM = 2000  # a non-zero shipping below R$ 20.00 becomes R$ 20.00
FREE_SHIPPING_ABOVE = 1_000_000  # free when subtotal > R$ 10,000.00
TOTAL_TOLERANCE = 1  # centavo

CHASSIS = "PART_CATEGORY_CHASSIS"

# Seed catalog as the earlier system gave it (compat ids 1-20). Used to check
# that /get-pecas answers the right car's parts: the compat Peca carries no
# car id, so "belongs to the car" means "is one of the car's seed parts".
SEED_COMPAT_CARS = [
    {"modelo": "Fusca", "ano": 2014, "ids": set(map(str, range(1, 7)))},
    {"modelo": "Civic", "ano": 2023, "ids": set(map(str, range(7, 14)))},
    {"modelo": "Corolla", "ano": 2020, "ids": set(map(str, range(14, 21)))},
]

DIGITS = re.compile(r"^[0-9]+$")


@events.init_command_line_parser.add_listener
def _add_options(parser):
    parser.add_argument(
        "--api",
        choices=["v1", "compat"],
        default="v1",
        env_var="CARBUILD_API",
        help="API surface to drive: v1 (/v1/...) or compat (seed-compatible routes)",
    )
    parser.add_argument(
        "--retry-share",
        type=float,
        default=0.05,
        env_var="CARBUILD_RETRY_SHARE",
        help="share of v1 orders re-sent with the same idempotency key (must return the same order)",
    )
    parser.add_argument(
        "--issuer",
        default="",
        env_var="CARBUILD_ISSUER_URL",
        help="dev issuer URL: each user gets a shopper token from <issuer>/token (empty: anonymous users)",
    )
    parser.add_argument(
        "--negative-share",
        type=float,
        default=0.0,
        env_var="CARBUILD_NEGATIVE_SHARE",
        help="share of quotes sent with two chassis (must be refused with 400)",
    )


def fetch_token(issuer, subject):
    """A shopper token for subject from the dev issuer's /token endpoint."""
    query = urllib.parse.urlencode({"sub": subject, "roles": "shopper"})
    with urllib.request.urlopen(f"{issuer.rstrip('/')}/token?{query}", timeout=10) as resp:
        return resp.read().decode().strip()


class CheckError(Exception):
    """A response whose content breaks the contract or the business rules."""


def shipping_for(subtotal, units):
    """Shipping in centavos for a basket's subtotal (centavos) and unit count."""
    if subtotal > FREE_SHIPPING_ABOVE:
        return 0
    shipping = SHIPPING_PER_UNIT * units
    if 0 < shipping < SHIPPING_MINIMUM:
        shipping = SHIPPING_MINIMUM
    return shipping


def expect(cond, message):
    if not cond:
        raise CheckError(message)


def money(value, what):
    """Centavos from a v1 Money JSON; proto3 JSON may omit a zero minorUnits."""
    expect(isinstance(value, dict), f"{what}: not a Money object: {value!r}")
    expect(value.get("currencyCode") == CURRENCY, f"{what}: currency {value.get('currencyCode')!r}, want {CURRENCY}")
    units = value.get("minorUnits", "0")
    expect(isinstance(units, str) and re.fullmatch(r"-?[0-9]+", units), f"{what}: minorUnits {units!r} is not an int64 string")
    return int(units)


def reais_to_centavos(value, what):
    expect(isinstance(value, (int, float)), f"{what}: {value!r} is not a number")
    return int(round(value * 100))


def json_body(response):
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError) as err:
        raise CheckError(f"body is not JSON ({err}): {response.text[:120]!r}")


def pick_basket(parts, is_chassis, max_lines=5):
    """A random basket: 1-5 distinct parts, 1-3 units each, at most one chassis (1 unit)."""
    chassis = [p for p in parts if is_chassis(p)]
    others = [p for p in parts if not is_chassis(p)]
    n = random.randint(1, min(max_lines, len(parts)))
    basket = []
    if chassis and random.random() < 0.5:
        basket.append((random.choice(chassis), 1))
        n -= 1
    for part in random.sample(others, min(n, len(others))):
        basket.append((part, random.randint(1, 3)))
    if not basket:  # a car with a chassis only
        basket.append((chassis[0], 1))
    return basket


# Exceptions that mean "the response is not what the contract says".
_CHECK_ERRORS = (CheckError, KeyError, TypeError, ValueError, AttributeError, IndexError)


class _Checked:
    """Runs a request under catch_response and turns CheckError into a failure."""

    def __init__(self, client, method, path, name, **kwargs):
        self.ctx = client.request(method, path, name=name, catch_response=True, **kwargs)

    def __enter__(self):
        self.response = self.ctx.__enter__()
        return self.response

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            # Every check raises; reaching the end means the response passed
            # (this also accepts an expected 4xx).
            self.response.success()
        elif issubclass(exc_type, _CHECK_ERRORS):
            reason = str(exc) if exc_type is CheckError else f"malformed response ({exc_type.__name__}: {exc})"
            self.response.failure(reason)
        else:
            return self.ctx.__exit__(exc_type, exc, tb)
        self.ctx.__exit__(None, None, None)
        return True


def status(response, want):
    if not response.status_code:
        err = getattr(response, "error", None)
        # strip object addresses so equal errors group into one row of the report
        raise CheckError("no response: " + re.sub(r" at 0x[0-9a-f]+", "", f"{type(err).__name__}: {err}"))
    if response.status_code != want:
        raise CheckError(f"status {response.status_code}, want {want}: {response.text[:160]!r}")


# CARBUILD_CLIENT=fast drives the same journeys over geventhttpclient
# (FastHttpUser: several times more requests per CPU than python-requests, so
# one Locust process simulates more users). Set it for every worker too.
_CLIENT = os.environ.get("CARBUILD_CLIENT", "requests")
if _CLIENT not in ("requests", "fast"):
    raise SystemExit(f"CARBUILD_CLIENT={_CLIENT!r}: want requests or fast")


_ORDER_LOG = None


def log_confirmed(order_id, key):
    """Appends a confirmed order to CARBUILD_ORDER_LOG (when set), one line, flushed."""
    global _ORDER_LOG
    path = os.environ.get("CARBUILD_ORDER_LOG")
    if not path:
        return
    if _ORDER_LOG is None:
        _ORDER_LOG = open(path, "a", encoding="utf-8")
    _ORDER_LOG.write(f"{order_id} {key}\n")
    _ORDER_LOG.flush()


@events.request.add_listener
def _ledger(response=None, exception=None, **_kw):
    """Logs an order whose answer was checked confirmed (v1_order marks the
    response) when Locust records the request as a success: the ledger and
    the statistics count the same event."""
    confirmed = getattr(response, "carbuild_confirmed", None)
    if exception is None and confirmed:
        log_confirmed(*confirmed)


_ENV = None


@events.init.add_listener
def _keep_environment(environment, **_kw):
    global _ENV
    _ENV = environment


@events.quit.add_listener
def write_final_csv(**_kw):
    """Rewrites PREFIX_stats.csv and PREFIX_failures.csv (--csv PREFIX) with the
    final totals; a worker's statistics are its master's to write."""
    env = _ENV
    prefix = getattr(env.parsed_options, "csv_prefix", None) if env is not None and env.parsed_options else None
    if not prefix or isinstance(env.runner, locust.runners.WorkerRunner):
        return
    writer = StatsCSV(env, PERCENTILES_TO_REPORT)
    with open(prefix + "_stats.csv", "w", newline="", encoding="utf-8") as f:
        writer.requests_csv(csv.writer(f))
    with open(prefix + "_failures.csv", "w", newline="", encoding="utf-8") as f:
        writer.failures_csv(csv.writer(f))


class Shopper(FastHttpUser if _CLIENT == "fast" else HttpUser):
    """A shopper: browse cars, list a car's parts, quote a basket, place the order."""

    wait_time = between(1, 3)

    def on_start(self):
        # Locust turns off requests' trust_env, so REQUESTS_CA_BUNDLE (the CA
        # of an https --host, e.g. the tls overlay's dev CA) is applied here.
        # FastHttpUser does not verify certificates at all.
        ca = os.environ.get("REQUESTS_CA_BUNDLE")
        if ca and _CLIENT == "requests":
            self.client.verify = ca
        options = self.environment.parsed_options
        self.api = getattr(options, "api", "v1") if options else "v1"
        self.retry_share = getattr(options, "retry_share", 0.05) if options else 0.05
        self.negative_share = getattr(options, "negative_share", 0.0) if options else 0.0
        self.cars = []
        self.auth = {}
        issuer = getattr(options, "issuer", "") if options else ""
        if issuer:
            self.auth = {"Authorization": "Bearer " + fetch_token(issuer, f"locust-{uuid.uuid4()}")}
        if self.api == "v1":
            self.v1_browse()

    def checked(self, method, path, name=None, **kwargs):
        if self.auth:
            kwargs["headers"] = {**self.auth, **kwargs.get("headers", {})}
        return _Checked(self.client, method, path, name or path, **kwargs)

    # ---- tasks (the weights are the earlier experiments') -------------------

    @task(1)
    def browse(self):
        if self.api == "v1":
            self.v1_browse()
        else:
            self.compat_health()

    @task(3)
    def parts(self):
        if self.api == "v1":
            self.v1_parts(self.v1_random_car())
        else:
            self.compat_parts(random.choice(SEED_COMPAT_CARS))

    @task(2)
    def quote(self):
        if self.api == "v1":
            car = self.v1_random_car()
            parts = self.v1_parts(car)
            if parts:
                if random.random() < self.negative_share:
                    self.v1_two_chassis_refused()
                else:
                    self.v1_quote(parts)
        else:
            car = random.choice(SEED_COMPAT_CARS)
            pecas = self.compat_parts(car)
            if pecas:
                self.compat_quote(pecas)

    @task(1)
    def order(self):
        if self.api == "v1":
            parts = self.v1_parts(self.v1_random_car())
            if parts:
                quoted = self.v1_quote(parts)
                if quoted:
                    self.v1_order(*quoted)
        else:
            pecas = self.compat_parts(random.choice(SEED_COMPAT_CARS))
            if pecas:
                quoted = self.compat_quote(pecas)
                if quoted:
                    self.compat_order(*quoted)

    # ---- v1 ----------------------------------------------------------------

    def v1_random_car(self):
        if not self.cars:
            self.v1_browse()
        return random.choice(self.cars) if self.cars else {"id": "civic", "firstYear": 2023, "lastYear": 2023}

    def v1_browse(self):
        with self.checked("GET", "/v1/cars") as r:
            status(r, 200)
            cars = json_body(r).get("cars")
            expect(isinstance(cars, list) and cars, "no cars")
            for car in cars:
                expect(car.get("id") and car.get("name"), f"car without id or name: {car!r}")
                first, last = car.get("firstYear", 0), car.get("lastYear", 0)
                expect(0 < first <= last, f"car {car['id']}: years {first}-{last}")
            ids = {c["id"] for c in cars}
            expect({"fusca", "civic", "corolla"} <= ids, f"seed cars missing: {sorted({'fusca', 'civic', 'corolla'} - ids)}")
            self.cars = cars

    def v1_parts(self, car):
        """First page of the car's parts (with a model year in range), checked; [] on failure."""
        year = random.randint(car["firstYear"], car["lastYear"])
        path = f"/v1/cars/{car['id']}/parts?year={year}"
        with self.checked("GET", path, name="/v1/cars/{id}/parts") as r:
            status(r, 200)
            body = json_body(r)
            parts = body.get("parts")
            expect(isinstance(parts, list) and parts, f"car {car['id']}: no parts")
            expect(isinstance(body.get("nextPageToken", ""), str), "nextPageToken is not a string")
            last_id = 0
            chassis = 0
            for p in parts:
                pid = p.get("id", "")
                expect(DIGITS.match(pid), f"part id {pid!r} is not decimal")
                expect(int(pid) > last_id, f"parts not ordered by id at {pid}")
                last_id = int(pid)
                expect(p.get("carId") == car["id"], f"part {pid} belongs to {p.get('carId')!r}, not {car['id']!r}")
                expect(p.get("name"), f"part {pid} has no name")
                expect(str(p.get("category", "")).startswith("PART_CATEGORY_") and p["category"] != "PART_CATEGORY_UNSPECIFIED",
                       f"part {pid}: category {p.get('category')!r}")
                expect(money(p.get("price"), f"part {pid} price") > 0, f"part {pid}: price not positive")
                chassis += p["category"] == CHASSIS
            expect(chassis <= 1, f"car {car['id']} lists {chassis} chassis")
            return parts
        return []

    def v1_quote(self, parts):
        """Quote a random basket; returns (items, quote) when every check passed."""
        basket = pick_basket(parts, lambda p: p.get("category") == CHASSIS)
        items = [{"partId": p["id"], "quantity": q} for p, q in basket]
        with self.checked("POST", "/v1/quotes", json={"items": items}) as r:
            status(r, 200)
            quote = json_body(r)
            self.v1_check_priced(quote, basket, "quote")
            free = quote.get("freeShipping", False)
            expect(free == (money(quote.get("shipping"), "shipping") == 0 and money(quote.get("subtotal"), "subtotal") > FREE_SHIPPING_ABOVE),
                   f"freeShipping {free} does not match the totals")
            return items, quote
        return None

    def v1_check_priced(self, priced, basket, what):
        lines = priced.get("lines") or []
        expect(len(lines) == len(basket), f"{what}: {len(lines)} lines, want {len(basket)}")
        subtotal = units = 0
        for line, (part, qty) in zip(lines, basket):
            expect(line.get("partId") == part["id"], f"{what}: line part {line.get('partId')!r}, want {part['id']!r}")
            expect(line.get("quantity") == qty, f"{what}: part {part['id']} quantity {line.get('quantity')}, want {qty}")
            expect(line.get("name") == part["name"], f"{what}: part {part['id']} name {line.get('name')!r}")
            unit = money(line.get("unitPrice"), "unitPrice")
            expect(unit == money(part["price"], "listed price"), f"{what}: part {part['id']} unit price {unit}, listed {part['price']}")
            expect(money(line.get("lineTotal"), "lineTotal") == unit * qty, f"{what}: part {part['id']} lineTotal != unitPrice x quantity")
            subtotal += unit * qty
            units += qty
        got_sub = money(priced.get("subtotal"), "subtotal")
        got_ship = money(priced.get("shipping"), "shipping")
        got_total = money(priced.get("total"), "total")
        expect(got_sub == subtotal, f"{what}: subtotal {got_sub}, recomputed {subtotal}")
        want_ship = shipping_for(subtotal, units)
        expect(got_ship == want_ship, f"{what}: shipping {got_ship}, rules give {want_ship} (subtotal {subtotal}, {units} units)")
        expect(got_total == got_sub + got_ship, f"{what}: total {got_total} != subtotal {got_sub} + shipping {got_ship}")

    def v1_order(self, items, quote):
        key = f"locust-{uuid.uuid4()}"
        body = {"idempotencyKey": key, "items": items, "expectedTotal": quote["total"]}
        basket = [({"id": l["partId"], "name": l["name"], "price": l["unitPrice"]}, l["quantity"]) for l in quote["lines"]]
        order_id = None
        receipt = ""
        with self.checked("POST", "/v1/orders", json=body) as r:
            status(r, 200)
            order = json_body(r)
            expect(order.get("status") == "ORDER_STATUS_CONFIRMED", f"order status {order.get('status')!r}")
            order_id = order.get("id", "")
            if order.get("status") == "ORDER_STATUS_CONFIRMED" and order_id:
                r.carbuild_confirmed = (order_id, key)  # logged by _ledger if every check passes
            expect(len(order_id) >= 16, f"order id {order_id!r} looks guessable")
            self.v1_check_priced(order, basket, "order")
            expect(money(order.get("total"), "total") == money(quote["total"], "quoted total"), "order total differs from the quote")
            expect(_rfc3339(order.get("createTime")), f"createTime {order.get('createTime')!r} is not RFC 3339")
            receipt = order.get("receiptToken", "")
            if self.auth:
                expect(not receipt, "a signed-in customer's order came with a receipt token")
            else:
                expect(len(receipt) >= 43, f"anonymous order without a receipt token: {receipt!r}")
        if order_id and random.random() < self.retry_share:
            # Read it back: the owner (token) or the receipt holder sees it.
            headers = {} if self.auth else {"Order-Receipt": receipt}
            with self.checked("GET", f"/v1/orders/{order_id}", name="/v1/orders/{id}", headers=headers) as r:
                status(r, 200)
                expect(json_body(r).get("id") == order_id, "read back another order")
            with self.checked("POST", "/v1/orders", name="/v1/orders (same key)", json=body) as r:
                status(r, 200)
                again = json_body(r).get("id")
                expect(again == order_id, f"same idempotency key gave order {again!r}, first {order_id!r}")

    def v1_two_chassis_refused(self):
        items = [{"partId": "1", "quantity": 1}, {"partId": "7", "quantity": 1}]  # fusca + civic chassis
        with self.checked("POST", "/v1/quotes", name="/v1/quotes (two chassis)", json={"items": items}) as r:
            status(r, 400)
            err = json_body(r)
            expect(err.get("status") == "INVALID_ARGUMENT" and err.get("message"), f"error body {err!r}")

    # ---- compat (seed-compatible routes) -------------------------------------

    def compat_health(self):
        with self.checked("GET", "/health") as r:
            status(r, 200)
            expect(json_body(r).get("status") == "healthy", f"health {r.text[:80]!r}")

    def compat_parts(self, car):
        with self.checked("POST", "/get-pecas", json={"modelo": car["modelo"], "ano": car["ano"]}) as r:
            status(r, 200)
            pecas = json_body(r).get("pecas")
            expect(isinstance(pecas, list) and pecas, f"{car['modelo']}: no pecas")
            ids = set()
            for p in pecas:
                expect(DIGITS.match(str(p.get("id", ""))), f"peca id {p.get('id')!r}")
                expect(p.get("nome"), f"peca {p['id']} has no nome")
                expect(reais_to_centavos(p.get("valor", 0), f"peca {p['id']} valor") > 0, f"peca {p['id']}: valor not positive")
                ids.add(p["id"])
            expect(ids == car["ids"], f"{car['modelo']}: pecas {sorted(ids, key=int)}, want {sorted(car['ids'], key=int)}")
            return pecas
        return []

    def compat_quote(self, pecas):
        # The compat Peca has no category; the seed's chassis parts are named "Chassi".
        basket = pick_basket(pecas, lambda p: p["nome"].startswith("Chassi"))
        itens = [{"peca": p, "quantidade": q} for p, q in basket]
        with self.checked("POST", "/calcular", json={"itens": itens}) as r:
            status(r, 200)
            preco = json_body(r)
            self.compat_check_totals(preco, basket, preco.get("preco", 0), "calcular")
            return itens, preco
        return None

    def compat_check_totals(self, body, basket, subtotal_reais, what):
        subtotal = sum(reais_to_centavos(p["valor"], "valor") * q for p, q in basket)
        units = sum(q for _, q in basket)
        got_sub = reais_to_centavos(subtotal_reais, "subtotal")
        got_ship = reais_to_centavos(body.get("frete", 0), "frete")
        got_total = reais_to_centavos(body.get("total", body.get("valorTotal", 0)), "total")
        expect(got_sub == subtotal, f"{what}: subtotal {got_sub}, recomputed {subtotal}")
        want_ship = shipping_for(subtotal, units)
        expect(got_ship == want_ship, f"{what}: frete {got_ship}, rules give {want_ship}")
        expect(abs(got_total - (got_sub + got_ship)) <= TOTAL_TOLERANCE, f"{what}: total {got_total} != {got_sub} + {got_ship}")

    def compat_order(self, itens, preco):
        body = {"itens": itens, "valor_total": preco.get("total", 0)}
        with self.checked("POST", "/pagar", json=body) as r:
            status(r, 200)
            compra = json_body(r)
            expect(compra.get("status") == "CONFIRMADO", f"status {compra.get('status')!r}")
            expect(len(compra.get("pedidoId", "")) >= 16, f"pedidoId {compra.get('pedidoId')!r}")
            basket = [(i["peca"], i["quantidade"]) for i in itens]
            self.compat_check_totals(compra, basket, compra.get("subtotal", 0), "pagar")
            expect(abs(reais_to_centavos(compra.get("valorTotal", 0), "valorTotal") - reais_to_centavos(preco.get("total", 0), "total")) <= TOTAL_TOLERANCE,
                   "valorTotal differs from the quoted total")
            comprados = compra.get("itensComprados") or []
            expect(len(comprados) == len(itens), f"itensComprados has {len(comprados)} items, want {len(itens)}")
            expect(_rfc3339(compra.get("dataPedido")), f"dataPedido {compra.get('dataPedido')!r} is not RFC 3339")


RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value):
    return isinstance(value, str) and RFC3339.fullmatch(value) is not None
