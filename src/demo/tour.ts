import type { DemoState } from './cli.js'
import type { DemoImages } from './images.js'

/** What the demo prints once everything runs: where things are, tokens, and commands to paste. */
export function tour(state: DemoState, images: DemoImages): string {
  const auth = (who: string) => `-H "Authorization: Bearer $${who}"`
  const json = `-H 'Content-Type: application/json'`
  const mb = (images.bytes / 1024 / 1024).toFixed(1)
  const lines = [
    '',
    'Regent demo is running.',
    '',
    `  Regent     ${state.regentUrl}   (log: ${state.logFile})`,
    `  registry   ${state.registryUrl}   (docker-registry; GC restarts it read-only and back)`,
    `  images     ${images.repositories} repositories, ${images.tags} tags, ${images.manifests} manifests, ${mb} MB; teams payments and search`,
    `  config     ${state.configFile}`,
    '',
    'Paste these into a shell (tokens are valid for 12 hours):',
    '',
    `  export REGENT=${state.regentUrl}`,
    ...state.tokens.map((t) => `  export ${t.variable}=${t.token}`),
    '',
    ...state.tokens.map(
      (t) =>
        `  $${t.variable.padEnd(9)} ${t.sub}${t.teams.length ? ` (${t.teams.join(', ')})` : ''}, ${t.roles.join(' + ')}: ${t.what}`,
    ),
    '',
    'A short tour (jq makes the answers easier to read):',
    '',
    '  # 1. Tags with what shares their digest: deleting feature-cart also removes pr-102',
    `  curl -s "$REGENT/v1/registries/local/repositories/payments%2Fapi/tags" ${auth('REQUESTER')}`,
    '',
    '  # 2. The plan, without creating anything (every tag that vanishes, bytes GC can free, approvals needed)',
    `  curl -s -X POST $REGENT/v1/deletions ${auth('REQUESTER')} ${json} -d '{"registry":"local","verb":"delete-manifest","targets":[{"repository":"payments/api","tag":"feature-cart"}],"reason":"merged","dryRun":true}'`,
    '',
    '  # 3. Request it; it waits for an approver of payments (never the requester)',
    `  ID=$(curl -s -X POST $REGENT/v1/deletions ${auth('REQUESTER')} ${json} -d '{"registry":"local","verb":"delete-manifest","targets":[{"repository":"payments/api","tag":"feature-cart"}],"reason":"merged"}' | jq -r .id)`,
    `  HASH=$(curl -s $REGENT/v1/deletions/$ID ${auth('APPROVER')} | jq -r .planHash)`,
    `  curl -s -X POST $REGENT/v1/deletions/$ID/approvals ${auth('APPROVER')} ${json} -d "{\\"decision\\":\\"approve\\",\\"planHash\\":\\"$HASH\\"}"`,
    `  curl -s $REGENT/v1/deletions/$ID ${auth('APPROVER')} | jq '{state, summary, progress}'`,
    '',
    '  # 4. Changed your mind? Restore it (possible until the next GC)',
    `  curl -s -X POST $REGENT/v1/deletions/$ID/restore ${auth('APPROVER')}`,
    '',
    '  # 5. Released versions are immutable: this is refused with REGENT_* code and reason',
    `  curl -s -X POST $REGENT/v1/deletions ${auth('REQUESTER')} ${json} -d '{"registry":"local","verb":"delete-manifest","targets":[{"repository":"payments/api","tag":"1.0.0"}],"reason":"try","dryRun":true}'`,
    '',
    '  # 6. The retention policy of payments: what it would delete, and why',
    `  curl -s -X POST $REGENT/v1/policies/${state.policyId}/preview ${auth('APPROVER')}`,
    '',
    '  # 7. Garbage collection (read-only restart, dry run, collect, verify) and the bytes it freed:',
    '  #    request the deletion of step 3 again first, or there is nothing to free',
    `  GC=$(curl -s -X POST $REGENT/v1/registries/local/gc ${auth('ADMIN')} ${json} -d '{}' | jq -r .id)`,
    `  curl -s $REGENT/v1/gc-runs/$GC ${auth('ADMIN')} | jq '{state, bytesFreed, summary}'`,
    '',
    '  # 8. GraphQL, and the audit log (hash-chained)',
    `  curl -s $REGENT/graphql ${auth('REQUESTER')} ${json} -d '{"query":"{ registry(name: \\"local\\") { repositories { nodes { name } } } }"}'`,
    `  curl -s "$REGENT/v1/audit?limit=5" ${auth('ADMIN')}`,
    '',
    `  API docs: ${state.regentUrl}/docs${state.graphiql ? `   GraphiQL: ${state.regentUrl}/graphiql` : ''}${state.console ? `   console: ${state.regentUrl}/ui` : ''}`,
    '',
    'Press Ctrl-C to stop everything the demo started.',
  ]
  return lines.join('\n')
}
