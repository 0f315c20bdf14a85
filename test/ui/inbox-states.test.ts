import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { DELETION_STATES } from '../../src/deletions/state-machine.js'

// The console's code has no build step and cannot import the TypeScript state machine, so the
// inbox keeps its own list of states for its filter. This test keeps the two from drifting apart.
const INBOX = path.resolve(import.meta.dirname, '../../src/ui/public/js/pages/inbox.js')

/** States a request passes through inside the transaction that sets them: nobody can filter on them. */
const TRANSIENT = ['planned', 'approved']

t.test(
  "the inbox's state filter offers every state a request can be found in, in the state machine's order",
  async (t) => {
    const source = readFileSync(INBOX, 'utf8')
    const list = /const STATES = \[([^\]]*)\]/.exec(source)?.[1]
    t.ok(list, 'inbox.js declares its STATES list')
    const offered = [...(list ?? '').matchAll(/'([a-z_]+)'/g)].map((match) => match[1])
    t.same(
      offered,
      DELETION_STATES.filter((state) => !TRANSIENT.includes(state)),
    )
  },
)
