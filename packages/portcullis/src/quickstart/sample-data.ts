/**
 * Fake customer records for the quickstart's sample database. Deterministic, so that a tour
 * written against it stays true; every value is invented (SSNs in the 9xx range, which is never
 * issued; card numbers from the test ranges card networks publish).
 */

const FIRST = ["Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia"];
const LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen", "Thompson", "Perlman"];
const TEST_CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"];

export function sampleSchemaSql(customers = 200): string {
  const rows: string[] = [];
  const payments: string[] = [];
  for (let i = 1; i <= customers; i++) {
    const first = FIRST[i % FIRST.length]!;
    const last = LAST[(i * 7) % LAST.length]!;
    const email = `${first}.${last}${i}@example.com`.toLowerCase();
    const ssn = `9${String(i % 100).padStart(2, "0")}-${String(10 + (i % 89)).padStart(2, "0")}-${String(1000 + i).slice(-4)}`;
    const phone = `+1-555-01${String(i % 100).padStart(2, "0")}`;
    rows.push(`(${i}, '${first} ${last}', '${email}', '${ssn}', '${phone}', now() - interval '${i} days')`);
    payments.push(`(${i}, ${i}, ${(i * 13) % 500 + 0.99}, '${TEST_CARDS[i % TEST_CARDS.length]}')`);
  }
  return `
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, ssn text, phone text, created_at timestamptz NOT NULL);
    CREATE TABLE payments (id int PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(10,2) NOT NULL, card_number text NOT NULL);
    INSERT INTO customers VALUES ${rows.join(",\n")};
    INSERT INTO payments VALUES ${payments.join(",\n")};
  `;
}
