-- Seed catalog of the earlier system. Part ids 1-20 are the ids its clients
-- (stored carts, the Locust file) use: fusca 1-6, civic 7-13, corolla 14-20.
-- Prices in centavos (R$ 5000.00 = 500000).

-- +goose Up
INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES
    ('fusca',   'Fusca',   2014, 2014),
    ('civic',   'Civic',   2023, 2023),
    ('corolla', 'Corolla', 2020, 2020);

INSERT INTO catalog.parts (id, car_id, name, category, price_minor, currency) VALUES
    ( 1, 'fusca',   'Chassi',               'chassis',       500000, 'BRL'),
    ( 2, 'fusca',   'Motor 1.6',            'engine',        350000, 'BRL'),
    ( 3, 'fusca',   'Rodas Aro 14',         'wheels',         80000, 'BRL'),
    ( 4, 'fusca',   'Farol Dianteiro',      'headlight',      15000, 'BRL'),
    ( 5, 'fusca',   'Parachoque Traseiro',  'bumper',         20000, 'BRL'),
    ( 6, 'fusca',   'Capô',                 'hood',           35000, 'BRL'),
    ( 7, 'civic',   'Chassi',               'chassis',       800000, 'BRL'),
    ( 8, 'civic',   'Motor 2.0 VTEC',       'engine',        650000, 'BRL'),
    ( 9, 'civic',   'Rodas Aro 16',         'wheels',        120000, 'BRL'),
    (10, 'civic',   'Farol LED',            'headlight',      35000, 'BRL'),
    (11, 'civic',   'Parachoque Esportivo', 'bumper',         45000, 'BRL'),
    (12, 'civic',   'Capô Esportivo',       'hood',           60000, 'BRL'),
    (13, 'civic',   'Spoiler',              'spoiler',        30000, 'BRL'),
    (14, 'corolla', 'Chassi',               'chassis',       750000, 'BRL'),
    (15, 'corolla', 'Motor 1.8 Hybrid',     'engine',        700000, 'BRL'),
    (16, 'corolla', 'Rodas Aro 15',         'wheels',         90000, 'BRL'),
    (17, 'corolla', 'Farol Xenon',          'headlight',      28000, 'BRL'),
    (18, 'corolla', 'Parachoque Híbrido',   'bumper',         40000, 'BRL'),
    (19, 'corolla', 'Capô Aerodinâmico',    'hood',           50000, 'BRL'),
    (20, 'corolla', 'Sistema Híbrido',      'hybrid_system', 200000, 'BRL');

-- Explicit ids do not advance the identity sequence; move it past the seed
-- (and past any id it ever handed out: ids are never reused) so the next
-- part gets id 21 or more.
SELECT setval(seq, GREATEST(
           (SELECT max(id) FROM catalog.parts),
           20,
           COALESCE(pg_sequence_last_value(seq), 0)))
FROM CAST(pg_get_serial_sequence('catalog.parts', 'id') AS regclass) AS seq;

-- +goose Down
DELETE FROM catalog.parts WHERE id BETWEEN 1 AND 20;
DELETE FROM catalog.cars WHERE id IN ('fusca', 'civic', 'corolla');
