import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { KUBERNETES_RESOURCES } from '../../src/usage/kubernetes/source.js'

t.test(
  'the shipped ClusterRole grants get, list and watch on exactly the resources the source lists',
  async (t) => {
    const text = readFileSync(
      new URL('../../deploy/kubernetes/rbac/usage-clusterrole.yaml', import.meta.url),
      'utf8',
    )
    const role = parseAllDocuments(text)
      .map((d) => d.toJS())
      .find((d) => d.kind === 'ClusterRole')
    const granted = new Set<string>()
    for (const rule of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      t.same([...rule.verbs].sort(), ['get', 'list', 'watch'], 'read-only verbs')
      for (const group of rule.apiGroups)
        for (const resource of rule.resources) granted.add(`${group}/${resource}`)
    }
    const read = KUBERNETES_RESOURCES.map(
      (r) => `${r.group.replace(/^\/apis?\/(v1)?/, '').replace(/\/v1$/, '')}/${r.plural}`,
    )
    t.same([...granted].sort(), [...new Set(read)].sort())
  },
)
