#!/usr/bin/env node
// Copies the web console's static files next to the compiled plugin (`node scripts/copy-ui.mjs
// <target>`): tsc compiles src/ but leaves src/ui/public alone, and the plugin serves the folder
// beside it. Run by `npm run build` (dist/ui/public), `npm run bench:build` and the test runner
// (.test-dist/src/ui/public, for the compiled test fixtures).
import { cpSync, rmSync } from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const target = process.argv[2]
if (!target) {
  process.stderr.write('usage: node scripts/copy-ui.mjs <target folder>\n')
  process.exit(2)
}
const destination = path.resolve(root, target)
rmSync(destination, { recursive: true, force: true })
cpSync(path.join(root, 'src/ui/public'), destination, { recursive: true })
