-- Small schema the capture tools introspect (loaded into database "corpus").
CREATE EXTENSION IF NOT EXISTS plpgsql;
CREATE SCHEMA shop;
COMMENT ON SCHEMA shop IS 'shop objects';
CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN shop.email AS text CHECK (VALUE LIKE '%@%');
CREATE SEQUENCE shop.invoice_no START 1000;
CREATE TABLE shop.customers (
    id bigserial PRIMARY KEY,
    email shop.email NOT NULL UNIQUE,
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT name_len CHECK (length(name) < 200)
);
COMMENT ON TABLE shop.customers IS 'people who buy';
COMMENT ON COLUMN shop.customers.email IS 'login e-mail';
CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers(id) ON DELETE CASCADE,
    status shop.order_status NOT NULL DEFAULT 'new',
    invoice integer DEFAULT nextval('shop.invoice_no'),
    total numeric(12,2) NOT NULL CHECK (total >= 0),
    note varchar(200),
    tags text[],
    doc jsonb
);
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
CREATE INDEX orders_status_total_idx ON shop.orders (status, total DESC) WHERE status <> 'shipped';
CREATE UNIQUE INDEX orders_invoice_uq ON shop.orders (invoice);
CREATE INDEX orders_lower_note_idx ON shop.orders (lower(note));
COMMENT ON TABLE shop.orders IS 'orders placed';
CREATE TABLE shop.order_lines (
    order_id bigint NOT NULL,
    line_no int NOT NULL,
    sku text NOT NULL,
    qty int NOT NULL DEFAULT 1,
    PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (order_id) REFERENCES shop.orders(id)
);
CREATE TABLE shop.events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    happened date NOT NULL,
    payload text,
    PRIMARY KEY (id, happened)
) PARTITION BY RANGE (happened);
CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE VIEW shop.order_totals AS
    SELECT c.id AS customer_id, c.name, sum(o.total) AS total
    FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
COMMENT ON VIEW shop.order_totals IS 'per-customer totals';
CREATE MATERIALIZED VIEW shop.daily_totals AS
    SELECT date_trunc('day', now()) AS day, count(*) AS n FROM shop.orders;
CREATE INDEX daily_totals_day_idx ON shop.daily_totals (day);
CREATE FUNCTION shop.order_count(cust bigint) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM shop.orders WHERE customer_id = cust $$;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE PROCEDURE shop.reset_invoices() LANGUAGE sql AS $$ SELECT setval('shop.invoice_no', 1000) $$;
CREATE TYPE shop.money_pair AS (amount numeric, currency char(3));
CREATE TABLE public.notes (id serial PRIMARY KEY, body text, "Mixed Case" int);
CREATE ROLE corpus_reader;
CREATE ROLE "reporting-role";  -- Metabase SET ROLE variant with a quoted name
GRANT USAGE ON SCHEMA shop TO corpus_reader;
GRANT SELECT ON shop.orders TO corpus_reader;
GRANT SELECT (id, name) ON shop.customers TO corpus_reader;
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_reader ON shop.orders FOR SELECT TO corpus_reader USING (status <> 'new');
CREATE STATISTICS shop.orders_stats (dependencies) ON customer_id, status FROM shop.orders;
CREATE PUBLICATION corpus_pub FOR TABLE shop.orders;
INSERT INTO shop.customers (email, name) VALUES ('a@example.com', 'Ann'), ('b@example.com', 'Bob');
INSERT INTO shop.orders (customer_id, status, total, note) VALUES (1, 'paid', 10.50, 'first'), (2, 'new', 3, NULL);
INSERT INTO shop.order_lines VALUES (1, 1, 'SKU-1', 2);
REFRESH MATERIALIZED VIEW shop.daily_totals;
ANALYZE;
