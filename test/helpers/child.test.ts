import t from 'tap'
import { compiledFixture, procStatFields, runNode } from './child.js'
import { waitFor } from './wait.js'

/** Whether a process is still there (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  const state = procStatFields(pid)?.[0]
  return state !== undefined && state !== 'Z' && state !== 'X'
}

t.test('a process spawned tied to its parent ends when the parent is killed outright', async (t) => {
  const parent = runNode([compiledFixture(new URL('./fixtures/tied-parent.ts', import.meta.url))])
  t.teardown(() => {
    parent.child.kill('SIGKILL')
  })
  const pid = await waitFor(
    () => Number(/child (\d+)/.exec(parent.output())?.[1] ?? 0),
    10_000,
    "the fixture to print its child's pid",
  )
  t.ok(alive(pid), 'the child runs while its parent does')
  parent.child.kill('SIGKILL')
  await parent.exited
  await t.resolves(
    waitFor(() => !alive(pid), 10_000, 'the child to end'),
    'the child is gone once the parent was SIGKILLed, with no cleanup run',
  )
})
