"""Unit tests of the locustfile's rules and checks (no server needed).

Run: /usr/bin/python3 -m unittest discover -s loadtest -p 'test_locustfile.py'
"""

import random
import unittest

import locustfile as lf


def money(v):
    return {"currencyCode": "BRL", "minorUnits": str(v)}


class ShippingTest(unittest.TestCase):
    def test_rules(self):
        cases = [
            (800000, 1, 2000),  # one unit: the R$ 20 minimum
            (70000, 2, 3000),  # R$ 15 per unit
            (1000000, 6, 9000),  # exactly R$ 10,000: not free
            (1000001, 1, 0),  # above: free
            (0, 0, 0),
        ]
        for subtotal, units, want in cases:
            with self.subTest(subtotal=subtotal, units=units):
                self.assertEqual(lf.shipping_for(subtotal, units), want)


class BasketTest(unittest.TestCase):
    def test_at_most_one_chassis(self):
        parts = [{"id": str(i), "category": lf.CHASSIS if i in (1, 7) else "PART_CATEGORY_ENGINE"} for i in range(1, 12)]
        rng_state = random.getstate()
        random.seed(1)
        try:
            for _ in range(2000):
                basket = lf.pick_basket(parts, lambda p: p["category"] == lf.CHASSIS)
                self.assertTrue(1 <= len(basket) <= 5)
                chassis = [q for p, q in basket if p["category"] == lf.CHASSIS]
                self.assertLessEqual(len(chassis), 1)
                self.assertTrue(all(q == 1 for q in chassis))
                self.assertEqual(len({p["id"] for p, _ in basket}), len(basket))
        finally:
            random.setstate(rng_state)

    def test_chassis_only_car(self):
        parts = [{"id": "1", "category": lf.CHASSIS}]
        self.assertEqual(lf.pick_basket(parts, lambda p: p["category"] == lf.CHASSIS), [(parts[0], 1)])


class MoneyTest(unittest.TestCase):
    def test_omitted_zero(self):
        self.assertEqual(lf.money({"currencyCode": "BRL"}, "x"), 0)

    def test_wrong_currency_or_number(self):
        with self.assertRaises(lf.CheckError):
            lf.money({"currencyCode": "USD", "minorUnits": "1"}, "x")
        with self.assertRaises(lf.CheckError):
            lf.money({"currencyCode": "BRL", "minorUnits": 1}, "x")  # int64 must be a JSON string


class PricedCheckTest(unittest.TestCase):
    part = {"id": "10", "name": "Farol LED", "price": money(35000)}

    def quote(self, sub, ship, total, line_total=70000):
        return {"lines": [{"partId": "10", "name": "Farol LED", "quantity": 2, "unitPrice": money(35000), "lineTotal": money(line_total)}],
                "subtotal": money(sub), "shipping": money(ship), "total": money(total)}

    def test_correct(self):
        lf.Shopper.v1_check_priced(None, self.quote(70000, 3000, 73000), [(self.part, 2)], "quote")

    def test_wrong(self):
        for q in (self.quote(70000, 2000, 72000), self.quote(70000, 3000, 73001), self.quote(70000, 3000, 73000, line_total=35000)):
            with self.assertRaises(lf.CheckError):
                lf.Shopper.v1_check_priced(None, q, [(self.part, 2)], "quote")

    def test_compat_totals(self):
        peca = {"id": "7", "nome": "Chassi", "valor": 8000}
        lf.Shopper.compat_check_totals(None, {"preco": 8000, "frete": 20, "total": 8020}, [(peca, 1)], 8000, "calcular")
        with self.assertRaises(lf.CheckError):
            lf.Shopper.compat_check_totals(None, {"preco": 8000, "total": 8000}, [(peca, 1)], 8000, "calcular")


class RFC3339Test(unittest.TestCase):
    def test(self):
        self.assertTrue(lf._rfc3339("2026-11-27T12:00:00Z"))
        self.assertTrue(lf._rfc3339("2026-11-27T12:00:00.123456789Z"))
        self.assertTrue(lf._rfc3339("2026-11-27T12:00:00-03:00"))
        self.assertFalse(lf._rfc3339("27/11/2026"))
        self.assertFalse(lf._rfc3339(None))


if __name__ == "__main__":
    unittest.main()


class OrderLogTest(unittest.TestCase):
    def test_appends_each_confirmed_order(self):
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "orders.txt")
            os.environ["CARBUILD_ORDER_LOG"] = path
            try:
                lf.log_confirmed("a1", "locust-1")
                lf.log_confirmed("b2", "locust-2")
                with open(path, encoding="utf-8") as f:
                    self.assertEqual(f.read().splitlines(), ["a1 locust-1", "b2 locust-2"])
            finally:
                del os.environ["CARBUILD_ORDER_LOG"]
                lf._ORDER_LOG.close()
                lf._ORDER_LOG = None

    def test_off_without_the_variable(self):
        import os

        os.environ.pop("CARBUILD_ORDER_LOG", None)
        lf.log_confirmed("a1", "locust-1")
        self.assertIsNone(lf._ORDER_LOG)


class LedgerTest(unittest.TestCase):
    """The ledger is written by the request event that Locust counts."""

    def test_only_successful_marked_orders(self):
        import os
        import tempfile
        import types

        confirmed = types.SimpleNamespace(carbuild_confirmed=("a1", "locust-1"))
        unmarked = types.SimpleNamespace()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "orders.txt")
            os.environ["CARBUILD_ORDER_LOG"] = path
            try:
                lf._ledger(response=confirmed, exception=None)
                lf._ledger(response=unmarked, exception=None)  # a quote, a read-back
                lf._ledger(response=types.SimpleNamespace(carbuild_confirmed=("b2", "locust-2")), exception=AssertionError("total differs"))
                lf._ledger(response=None, exception=ConnectionError("reset"))
                with open(path, encoding="utf-8") as f:
                    self.assertEqual(f.read().splitlines(), ["a1 locust-1"])
            finally:
                del os.environ["CARBUILD_ORDER_LOG"]
                lf._ORDER_LOG.close()
                lf._ORDER_LOG = None


class FinalCSVTest(unittest.TestCase):
    """At exit the stats CSV holds every request, the last second's too."""

    def test_writes_final_totals(self):
        import csv
        import os
        import tempfile
        import types

        from locust.env import Environment

        with tempfile.TemporaryDirectory() as d:
            prefix = os.path.join(d, "run")
            with open(prefix + "_stats.csv", "w", encoding="utf-8") as f:
                f.write("Type,Name,Request Count,Failure Count\nPOST,/v1/orders,1,0\n")  # a stale snapshot
            env = Environment(user_classes=[lf.Shopper], parsed_options=types.SimpleNamespace(csv_prefix=prefix))
            env.create_local_runner()
            for _ in range(3):
                env.stats.log_request("POST", "/v1/orders", 12, 300)
            env.stats.log_request("GET", "/v1/cars", 2, 100)
            env.stats.log_error("GET", "/v1/cars", "status 503, want 200")
            old = lf._ENV
            try:
                lf._keep_environment(env)
                lf.write_final_csv(exit_code=0)
            finally:
                lf._ENV = old
            with open(prefix + "_stats.csv", encoding="utf-8") as f:
                rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
            self.assertEqual(rows[("POST", "/v1/orders")]["Request Count"], "3")
            self.assertEqual(rows[("", "Aggregated")]["Request Count"], "4")
            self.assertEqual(rows[("", "Aggregated")]["Failure Count"], "1")
            with open(prefix + "_failures.csv", encoding="utf-8") as f:
                self.assertIn("status 503, want 200", f.read())

    def test_nothing_without_csv(self):
        import types

        from locust.env import Environment

        env = Environment(user_classes=[lf.Shopper], parsed_options=types.SimpleNamespace(csv_prefix=None))
        old = lf._ENV
        try:
            lf._keep_environment(env)
            lf.write_final_csv(exit_code=0)  # must not raise nor write
        finally:
            lf._ENV = old
