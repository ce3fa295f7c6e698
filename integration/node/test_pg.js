// node pg with named queries ({ name, text, values }) through pgcached, compared with direct.
//
//   DIRECT_URL=... PGCACHED_URL=... node test_pg.js
//
// 20 concurrent clients over pgcached's transaction pool of 5: every client parses its named
// statements once (node pg remembers them per connection) and reuses them in later transactions,
// which land on server connections that never saw the Parse. Prints one line per check and a
// final "N passed, M failed"; exits 1 on any failure.
'use strict'

const assert = require('node:assert/strict')
const { Client, Pool, types } = require('pg')

// Compare values, not JS objects that depend on the local time zone.
types.setTypeParser(1114, (s) => s) // timestamp
types.setTypeParser(1184, (s) => s) // timestamptz
types.setTypeParser(1082, (s) => s) // date

const CLIENTS = 20
const ROUNDS = 8

const Q = {
  types: {
    name: 'types',
    text:
      'SELECT $1::int4 + g AS i, $2::text || g AS t, $3::numeric * g AS num, $4::date + g AS d,' +
      " $5::timestamptz + make_interval(hours => g) AS ts, $6::bytea AS b, $7::jsonb AS j," +
      ' $8::int8[] AS a, $9::bool AS yes, $10::float8 AS f, NULL::text AS n FROM generate_series(1, 3) g',
  },
  insert: { name: 'insert', text: 'INSERT INTO node_items VALUES ($1, $2, $3, $4) RETURNING n' },
  bump: { name: 'bump', text: 'UPDATE node_items SET qty = qty + $1 WHERE client = $2 AND n = $3 RETURNING qty' },
  list: { name: 'list', text: 'SELECT n, name, qty FROM node_items WHERE client = $1 ORDER BY n' },
  div: { name: 'div', text: 'SELECT 10 / $1::int AS q' },
  count: { name: 'count', text: 'SELECT count(*)::int AS c FROM node_items WHERE client = $1' },
}

function shape(res) {
  return { command: res.command, rowCount: res.rowCount, fields: res.fields.map((f) => [f.name, f.dataTypeID]), rows: res.rows }
}

function errShape(e) {
  return { error: e.code, message: e.message, severity: e.severity }
}

async function connect(url) {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10000 })
  await c.connect()
  return c
}

async function clientWork(url, id, gate) {
  const out = []
  const c = await connect(url)
  try {
    await gate
    for (let r = 0; r < ROUNDS; r++) {
      out.push(shape(await c.query({ ...Q.types, values: [id * 100 + r, `c${id}-`, '1.25', '2000-01-01', '2024-02-29 12:00:00+00', Buffer.from([id, r, 0, 255]), JSON.stringify({ id, r: [r, null] }), [id, r, '-9223372036854775808'], r % 2 === 0, r / 2] })))
      await c.query('BEGIN')
      for (let i = 0; i < 3; i++) {
        out.push(shape(await c.query({ ...Q.insert, values: [id, r * 10 + i, `item ${id}/${r}/${i}`, i] })))
      }
      out.push(shape(await c.query({ ...Q.bump, values: [5, id, r * 10] })))
      await c.query('COMMIT')
      // a failing named query outside a transaction, then recovery
      try {
        await c.query({ ...Q.div, values: [0] })
        out.push('no error?')
      } catch (e) {
        out.push(errShape(e))
      }
      out.push(shape(await c.query({ ...Q.div, values: [r + 1] })))
      // an error inside a transaction: the transaction is aborted until ROLLBACK
      await c.query('BEGIN')
      try {
        await c.query({ ...Q.insert, values: [id, r * 10, 'dup', 0] })
      } catch (e) {
        out.push(errShape(e))
      }
      try {
        await c.query({ ...Q.count, values: [id] })
      } catch (e) {
        out.push(errShape(e))
      }
      await c.query('ROLLBACK')
      out.push(shape(await c.query({ ...Q.list, values: [id] })))
    }
    out.push(shape(await c.query({ ...Q.count, values: [id] })))
  } finally {
    await c.end()
  }
  return out
}

async function setup(url) {
  const c = await connect(url)
  await c.query('DROP TABLE IF EXISTS node_items')
  await c.query('CREATE TABLE node_items (client int, n int, name text, qty int, PRIMARY KEY (client, n))')
  await c.end()
}

async function concurrentClients(url) {
  await setup(url)
  let open
  const gate = new Promise((resolve) => (open = resolve))
  const runs = []
  for (let id = 0; id < CLIENTS; id++) runs.push(clientWork(url, id, gate))
  setTimeout(open, 200)
  return Promise.all(runs)
}

async function poolRun(url) {
  // pg.Pool of 20: named queries on whichever pooled client, interleaved with transactions.
  const pool = new Pool({ connectionString: url, max: 20 })
  try {
    const jobs = []
    for (let i = 0; i < 300; i++) {
      jobs.push(
        (async () => {
          const c = await pool.connect()
          try {
            await c.query('BEGIN')
            const a = await c.query({ name: 'pool_a', text: 'SELECT $1::int * 2 AS v', values: [i] })
            const b = await c.query({ name: 'pool_b', text: 'SELECT $1::text AS s, $2::int[] AS arr', values: [String(i), [i, i + 1]] })
            await c.query('COMMIT')
            return [a.rows, b.rows]
          } finally {
            c.release()
          }
        })()
      )
    }
    return await Promise.all(jobs)
  } finally {
    await pool.end()
  }
}

async function edgeCases(url) {
  const out = []
  const c = await connect(url)
  const d = await connect(url) // a second client using the same statement names and texts
  try {
    // A named query whose Parse fails (no such table yet): node pg never saw ParseComplete, so it
    // sends the Parse again next time; after the table exists it must work.
    await c.query('DROP TABLE IF EXISTS node_late')
    try {
      await c.query({ name: 'late', text: 'SELECT * FROM node_late WHERE id = $1', values: [1] })
    } catch (e) {
      out.push(errShape(e))
    }
    await c.query('CREATE TABLE node_late (id int, v text)')
    await c.query("INSERT INTO node_late VALUES (1, 'one')")
    out.push(shape(await c.query({ name: 'late', text: 'SELECT * FROM node_late WHERE id = $1', values: [1] })))
    out.push(shape(await d.query({ name: 'late', text: 'SELECT * FROM node_late WHERE id = $1', values: [1] })))
    // A bad parameter value: Parse succeeds, Bind fails.
    try {
      await c.query({ name: 'badbind', text: 'SELECT $1::int AS v', values: ['not a number'] })
    } catch (e) {
      out.push(errShape(e))
    }
    out.push(shape(await c.query({ name: 'badbind', text: 'SELECT $1::int AS v', values: ['42'] })))
    // Rows fetched in pages: Execute with max_rows + Flush, PortalSuspended, resumed (no Sync
    // until the end, so the whole thing is one transaction's worth on one server connection).
    out.push(shape(await c.query({ name: 'paged', text: 'SELECT g FROM generate_series(1, $1::int) g', values: [25], rows: 4 })))
    // The client deallocates everything with SQL; node pg does not know, and the statements are
    // gone for it direct as well: the next named query fails the same way.
    await c.query('DEALLOCATE ALL')
    try {
      await c.query({ name: 'late', text: 'SELECT * FROM node_late WHERE id = $1', values: [1] })
    } catch (e) {
      out.push(errShape(e))
    }
    // d is unaffected by c's DEALLOCATE ALL.
    out.push(shape(await d.query({ name: 'late', text: 'SELECT * FROM node_late WHERE id = $1', values: [1] })))
    await c.query('DROP TABLE node_late')
  } finally {
    await c.end()
    await d.end()
  }
  return out
}

let passed = 0
let failed = 0
async function check(name, fn) {
  try {
    const direct = await fn(process.env.DIRECT_URL)
    const proxied = await fn(process.env.PGCACHED_URL)
    assert.deepStrictEqual(proxied, direct)
    passed++
    console.log(`PASS  ${name}`)
  } catch (e) {
    failed++
    console.log(`FAIL  ${name}`)
    console.log(String(e.stack || e).split('\n').slice(0, 60).join('\n'))
  }
}

async function main() {
  if (!process.env.DIRECT_URL || !process.env.PGCACHED_URL) {
    console.error('DIRECT_URL and PGCACHED_URL must be set (integration/run.sh does)')
    process.exit(2)
  }
  await check('node pg: 20 clients, named queries over a pool of 5', concurrentClients)
  await check('node pg: pg.Pool of 20, named queries in transactions', poolRun)
  await check('node pg: failed Parse, bad Bind, paged rows, DEALLOCATE ALL', edgeCases)
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
