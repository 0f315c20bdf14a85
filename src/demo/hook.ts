/**
 * `node dist/demo/hook.js <url>`: the demo's GC `before`/`after` command. POSTs to the demo's
 * control endpoint, which restarts the registry read-only or read-write, and exits 0 once that is
 * done (non-zero otherwise, so Regent records the step as failed).
 */
const url = process.argv[2]
if (!url) {
  process.stderr.write('usage: node dist/demo/hook.js <control url>\n')
  process.exit(2)
}
fetch(url, { method: 'POST' }).then(
  (res) => {
    process.stdout.write(`${url.replace(/\/[0-9a-f]{32}\//, '/…/')}: ${res.status}\n`)
    process.exit(res.ok ? 0 : 1)
  },
  (err: Error) => {
    process.stderr.write(`${err.message}\n`)
    process.exit(1)
  },
)
