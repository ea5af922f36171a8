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
