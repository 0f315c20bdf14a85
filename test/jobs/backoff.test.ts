import t from 'tap'
import { backoffCeiling, backoffDelay } from '../../src/lib/backoff.js'

const options = { baseMs: 1000, maxMs: 300_000 }

t.test('the ceiling doubles per failed attempt from the base and stops at the cap', async (t) => {
  t.same(
    [1, 2, 3, 4, 5].map((n) => backoffCeiling(n, options)),
    [1000, 2000, 4000, 8000, 16000],
  )
  t.equal(backoffCeiling(9, options), 256_000)
  t.equal(backoffCeiling(10, options), 300_000, 'capped')
  t.equal(
    backoffCeiling(5000, options),
    300_000,
    'a huge attempt number neither overflows nor exceeds the cap',
  )
  t.equal(backoffCeiling(0, options), 1000, 'attempts below 1 count as the first')
})

t.test('full jitter: the delay is anywhere from 0 to the ceiling', async (t) => {
  t.equal(
    backoffDelay(3, options, () => 0),
    0,
  )
  t.equal(
    backoffDelay(3, options, () => 1),
    4000,
  )
  t.equal(
    backoffDelay(3, options, () => 0.5),
    2000,
  )
  const draws = Array.from({ length: 2000 }, () => backoffDelay(4, options))
  t.ok(
    draws.every((d) => d >= 0 && d <= 8000),
    'every draw lies within [0, ceiling]',
  )
  t.ok(Math.min(...draws) < 800 && Math.max(...draws) > 7200, 'draws spread over the whole range')
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length
  t.ok(mean > 3400 && mean < 4600, `mean ${mean} is near half the ceiling`)
})

t.test('a random source outside [0, 1] cannot push a delay past the ceiling or below 0', async (t) => {
  t.equal(
    backoffDelay(2, options, () => 7),
    2000,
  )
  t.equal(
    backoffDelay(2, options, () => -1),
    0,
  )
})
