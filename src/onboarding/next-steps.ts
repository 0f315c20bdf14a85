import type { Config } from '../config.js'

/**
 * What a newcomer should do next, given what is configured. Empty once Regent has something to
 * manage: then the log and `/readyz` stay quiet about it.
 */
export function nextSteps(config: Pick<Config, 'registries'>): string[] {
  if (config.registries.length > 0) return []
  return [
    'No registry is configured, so there is nothing to browse or delete yet.',
    'Try Regent against a registry you already run: REGENT_REGISTRY_URL=http://127.0.0.1:5000 npm start',
    'Or describe your registries, teams and rules in a YAML file (README, Configuration) and start with REGENT_CONFIG=./regent.yaml npm start',
    'Or see everything on demo data, with a local registry and ready-made tokens: npm run demo',
  ]
}
