-- Orders belong to their customer (issue #14).
--   customer_id: the verified token subject of the caller that placed the
--     order; NULL for an anonymous order (then readable only with a receipt).
--   Idempotency keys are unique per customer, not globally: two customers
--     who pick the same key get two orders, and a conflict never names
--     another customer's order. Anonymous orders share one key space (the
--     '' customer), where the key itself is the guest's secret.
--   order_receipts: SHA-256 hashes of the receipt tokens handed out for an
--     anonymous order (one at creation, one more for each replay of the same
--     key and body, so a client whose first answer was lost can still read
--     its order). The tokens themselves are never stored.
-- Orders placed before this migration have no owner and no receipt: nobody
-- can read them through the API any more (they stay in the database).
--
-- Down keeps ownership instead of dropping it: the global unique key comes
-- back, so each customer's key is stored as key || U+001F || customer (a
-- valid key is printable ASCII, so the separator cannot be in it), and Up
-- splits such keys again. A down/up cycle therefore keeps every customer's
-- orders and keys; only anonymous orders' receipts are lost (fail closed:
-- those orders are then unreadable through the API).

-- +goose Up
ALTER TABLE orders.orders
    ADD COLUMN customer_id text
        CONSTRAINT orders_customer_id_not_blank CHECK (customer_id IS NULL OR btrim(customer_id) <> '');

ALTER TABLE orders.orders DROP CONSTRAINT orders_idempotency_key_key;
-- coalesce: NULL (anonymous) must collide with NULL, which a plain unique
-- constraint would not do.
CREATE UNIQUE INDEX orders_customer_idempotency_key
    ON orders.orders ((coalesce(customer_id, '')), idempotency_key);

-- Orders a Down of this migration folded (see above) get their customer back.
UPDATE orders.orders
SET customer_id = substr(idempotency_key, strpos(idempotency_key, chr(31)) + 1),
    idempotency_key = substr(idempotency_key, 1, strpos(idempotency_key, chr(31)) - 1)
WHERE strpos(idempotency_key, chr(31)) > 0;

-- GET /v1/orders: a customer's orders, newest first, by keyset pages.
CREATE INDEX orders_customer_created_idx
    ON orders.orders (customer_id, created_at DESC, id DESC) WHERE customer_id IS NOT NULL;

CREATE TABLE orders.order_receipts (
    order_id   uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    -- token_hash is SHA-256 of the receipt token (32 random bytes).
    token_hash bytea NOT NULL CONSTRAINT order_receipts_hash_size CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, token_hash)
);

-- 00004's default privileges cover tables created by the role that ran it;
-- grant explicitly so any owner running this migration gives the same rights.
GRANT SELECT, INSERT ON orders.order_receipts TO carbuild_orders_writer;

-- +goose Down
DROP TABLE orders.order_receipts;
DROP INDEX orders.orders_customer_created_idx;
DROP INDEX orders.orders_customer_idempotency_key;
UPDATE orders.orders SET idempotency_key = idempotency_key || chr(31) || customer_id WHERE customer_id IS NOT NULL;
ALTER TABLE orders.orders ADD CONSTRAINT orders_idempotency_key_key UNIQUE (idempotency_key);
ALTER TABLE orders.orders DROP COLUMN customer_id;
