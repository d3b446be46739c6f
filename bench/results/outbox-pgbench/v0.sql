BEGIN;
INSERT INTO orders (id, customer, cents) VALUES (md5(random()::text), 'c-1', 1);
COMMIT;
