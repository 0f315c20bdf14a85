import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import * as appsV1 from 'kubernetes-models/apps/v1'
import * as batchV1 from 'kubernetes-models/batch/v1'
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1'
import * as policyV1 from 'kubernetes-models/policy/v1'
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1'
import * as coreV1 from 'kubernetes-models/v1'
import pg from 'pg'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { buildApp } from '../../src/app.js'
import { CONFIG_FILE_ENV, ENV_VARS, loadConfig, QUICK_REGISTRY_ENV } from '../../src/config.js'
import {
  containersOf,
  type K8sObject,
  kubectlKustomize,
  parseManifests,
  renderKustomization,
  type Yaml,
} from '../helpers/kustomize.js'

/**
 * deploy/kubernetes: every manifest validates against the Kubernetes schemas (kubernetes-models,
 * generated from the Kubernetes OpenAPI document; the ServiceMonitor from prometheus-operator's
 * CRD), the production overlay renders, and what it renders agrees with the Dockerfile, the
 * routes and the config schema: image, ports, probes, user, env names, config file.
 */

const root = new URL('../../', import.meta.url).pathname
const kubernetesDir = path.join(root, 'deploy/kubernetes')
const overlayDir = path.join(kubernetesDir, 'overlays/production')

type ModelClass = new (data: object) => { validate(): void }
const MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'batch/v1': batchV1,
  'policy/v1': policyV1,
  'networking.k8s.io/v1': networkingV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
  'monitoring.coreos.com/v1': monitoringV1,
}

function schemaProblem(object: K8sObject): string | undefined {
  const Model = MODELS[object.apiVersion]?.[object.kind] as ModelClass | undefined
  if (!Model) return `no schema for ${object.apiVersion} ${object.kind}`
  try {
    new Model(object).validate()
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

function manifestFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return manifestFiles(full)
    return /\.ya?ml$/.test(entry.name) && entry.name !== 'kustomization.yaml' ? [full] : []
  })
}

const byKey = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
const sorted = (objects: K8sObject[]) => [...objects].sort((a, b) => byKey(a).localeCompare(byKey(b)))

/** What the final stage of the Dockerfile says about the running container. */
function dockerfileFacts() {
  const text = readFileSync(path.join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  const final = text.slice(text.lastIndexOf('\nFROM '))
  const env = new Map<string, string>()
  for (const [, body] of final.matchAll(/^ENV (.+)$/gm)) {
    for (const [, name, value] of (body ?? '').matchAll(/(\w+)=(\S+)/g)) env.set(name!, value!)
  }
  return {
    expose: Number(/^EXPOSE (\d+)/m.exec(final)?.[1]),
    user: /^USER (\S+)/m.exec(final)?.[1],
    workdir: /^WORKDIR (\S+)/m.exec(final)?.[1],
    cmd: JSON.parse(/^CMD (\[.*\])$/m.exec(final)?.[1] ?? '[]') as string[],
    env,
  }
}

const selects = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v)

t.test('every manifest in deploy/kubernetes validates against the Kubernetes schemas', async (t) => {
  const files = manifestFiles(kubernetesDir)
  t.ok(files.length >= 12, `${files.length} manifest files`)
  for (const file of files) {
    for (const object of parseManifests(readFileSync(file, 'utf8'), file)) {
      t.equal(schemaProblem(object), undefined, `${path.relative(kubernetesDir, file)}: ${object.kind}`)
    }
  }
})

t.test('the schema check refuses a broken manifest', async (t) => {
  const broken = parseManifests(
    readFileSync(path.join(kubernetesDir, 'base/api-deployment.yaml'), 'utf8'),
    'x',
  )[0]!
  const containers = containersOf(broken)
  containers[0]!.ports = [{ name: 'http', containerPort: 'eighty' }]
  t.match(schemaProblem(broken), /containerPort must be integer/)
  t.match(schemaProblem({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } }), /no schema/)
})

t.test(
  'the production overlay renders, and the fallback renderer agrees with kubectl kustomize',
  async (t) => {
    const fallback = renderKustomization(overlayDir)
    t.ok(fallback.length >= 13)
    const kubectl = await kubectlKustomize(overlayDir)
    if (!kubectl) {
      t.comment('kubectl is not installed: checked with the fallback renderer only')
      return
    }
    t.same(sorted(fallback), sorted(kubectl), 'the same objects, field for field')
  },
)

t.test('the rendered overlay agrees with the Dockerfile, the routes and the config schema', async (t) => {
  const objects = (await kubectlKustomize(overlayDir)) ?? renderKustomization(overlayDir)
  for (const object of objects) t.equal(schemaProblem(object), undefined, `rendered ${byKey(object)}`)
  const docker = dockerfileFacts()
  const find = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name)
    if (!found) throw new Error(`no ${kind} ${name}`)
    return found as K8sObject & {
      spec: Yaml
      data?: Record<string, string>
      stringData?: Record<string, string>
    }
  }
  const api = find('Deployment', 'regent-api')
  const worker = find('Deployment', 'regent-worker')
  const migrate = find('Job', 'regent-migrate')
  const configMap = find('ConfigMap', 'regent-config')
  const secret = find('Secret', 'regent-secrets')
  // The routes, from the app itself (built without a database, as the OpenAPI generator does).
  const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' })
  const app = await buildApp(loadConfig({}), { pool, migrate: false, background: false })
  await app.ready()
  t.teardown(async () => {
    await app.close()
    await pool.end()
  })
  const isRoute = (url: string) => app.hasRoute({ method: 'GET', url })

  t.test('one namespace and one pinned image everywhere', async (t) => {
    const namespaced = objects.filter((o) => o.kind !== 'Namespace' && !o.kind.startsWith('Cluster'))
    t.same([...new Set(namespaced.map((o) => o.metadata.namespace))], ['regent'])
    const images = [...new Set(objects.flatMap(containersOf).map((c) => c.image))]
    t.same(images, ['registry.example.com/platform/regent:0.1.0'])
  })

  t.test('3 API replicas without a worker, 2 worker replicas', async (t) => {
    t.equal(api.spec.replicas, 3)
    t.equal(worker.spec.replicas, 2)
    t.equal(envValue(api, 'REGENT_WORKER'), 'off')
    t.equal(envValue(worker, 'REGENT_WORKER'), 'on')
    // The env a replica really gets, through Regent's own config loader and the mounted file.
    const work = mkdtempSync(path.join(tmpdir(), 'regent-k8s-'))
    t.teardown(() => rmSync(work, { recursive: true, force: true }))
    for (const [deployment, runsJobs] of [
      [api, false],
      [worker, true],
    ] as const) {
      const env = containerEnv(deployment, secret, configMap, work)
      const config = loadConfig(env)
      t.equal(config.worker, runsJobs, `${deployment.metadata.name}: worker ${runsJobs}`)
      t.equal(config.port, docker.expose, 'listens on the exposed port')
      t.ok(config.databaseUrl, 'DATABASE_URL comes from the Secret')
    }
  })

  t.test('ports, probes and the user match the Dockerfile and the routes', async (t) => {
    t.equal(docker.env.get('PORT'), String(docker.expose), 'the image listens where it says it does')
    for (const deployment of [api, worker]) {
      const name = deployment.metadata.name
      const pod = deployment.spec.template.spec
      const [container] = pod.containers
      t.equal(pod.containers.length, 1)
      t.notOk(container.command ?? container.args, `${name} runs the image's CMD (${docker.cmd.join(' ')})`)
      t.same(container.ports, [{ name: 'http', containerPort: docker.expose, protocol: 'TCP' }])
      t.equal(container.readinessProbe.httpGet.path, '/readyz')
      t.equal(container.livenessProbe.httpGet.path, '/healthz')
      t.equal(container.startupProbe.httpGet.path, '/healthz')
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        t.equal(container[probe].httpGet.port, 'http', `${name} ${probe} uses the named port`)
        t.ok(isRoute(container[probe].httpGet.path), `${container[probe].httpGet.path} is a route`)
      }
      t.ok(container.resources.requests.cpu && container.resources.requests.memory, 'resource requests')
      // node:*-slim's `node` user is uid 1000.
      t.equal(docker.user, 'node')
      t.equal(pod.securityContext.runAsUser, 1000)
      t.equal(pod.securityContext.runAsNonRoot, true)
      const grace = Number(envValue(deployment, 'REGENT_SHUTDOWN_GRACE_MS') ?? 10000)
      const preStop = Number(container.lifecycle.preStop.exec.command[1])
      t.ok(
        pod.terminationGracePeriodSeconds * 1000 > grace + preStop * 1000,
        `${name}: Kubernetes waits longer than Regent drains`,
      )
    }
  })

  t.test('the migration Job runs what npm run migrate runs, from the image', async (t) => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
    const [container] = migrate.spec.template.spec.containers
    t.ok(
      (pkg.scripts.migrate as string).endsWith(`&& ${container.command.join(' ')}`),
      'the script after its build',
    )
    t.ok(existsSync(path.join(root, container.command[1])), `${container.command[1]} is built`)
    t.same(
      container.env.map((e: { name: string }) => e.name),
      ['DATABASE_URL'],
    )
    t.equal(migrate.spec.template.spec.restartPolicy, 'Never')
  })

  t.test('every env name is one Regent reads', async (t) => {
    const file = parseYaml(configMap.data!['regent.yaml']!)
    const known = new Set([
      ...Object.keys(ENV_VARS),
      CONFIG_FILE_ENV,
      ...Object.values(QUICK_REGISTRY_ENV),
      ...referencedEnvNames(file),
    ])
    for (const workload of [api, worker, migrate]) {
      for (const container of containersOf(workload)) {
        for (const { name } of (container.env as { name: string }[]) ?? []) {
          t.ok(known.has(name), `${workload.metadata.name}: ${name} is read by Regent`)
        }
      }
    }
    t.ok(referencedEnvNames(file).includes('REGISTRY_PASSWORD'), 'the config names the password variable')
  })

  t.test('selectors of the Services, budgets, policy and monitor find their pods', async (t) => {
    const podLabels = (d: K8sObject & { spec: Yaml }) => d.spec.template.metadata.labels
    const service = find('Service', 'regent')
    t.ok(selects(service.spec.selector, podLabels(api)), 'the Service selects API pods')
    t.notOk(selects(service.spec.selector, podLabels(worker)), 'and not the workers')
    t.notOk(selects(service.spec.selector, podLabels(migrate)), 'nor the migration')
    t.equal(service.spec.ports[0].targetPort, 'http')
    t.ok(selects(find('Service', 'regent-worker').spec.selector, podLabels(worker)))
    const apiBudget = find('PodDisruptionBudget', 'regent-api')
    t.ok(selects(apiBudget.spec.selector.matchLabels, podLabels(api)))
    t.ok(apiBudget.spec.minAvailable < api.spec.replicas, 'a node can still be drained')
    t.ok(selects(find('PodDisruptionBudget', 'regent-worker').spec.selector.matchLabels, podLabels(worker)))
    const policy = find('NetworkPolicy', 'regent')
    for (const d of [api, worker, migrate]) t.ok(selects(policy.spec.podSelector.matchLabels, podLabels(d)))
    const monitor = find('ServiceMonitor', 'regent')
    const services = objects.filter((o) => o.kind === 'Service')
    t.equal(services.length, 2)
    for (const s of services) t.ok(selects(monitor.spec.selector.matchLabels, s.metadata.labels))
    t.equal(monitor.spec.endpoints[0].port, 'http')
    t.ok(isRoute('/metrics'), '/metrics is a route')
  })
})

/** Names the config file points at with `passwordEnv`, `tokenEnv`, `secretEnv`, …. */
function referencedEnvNames(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedEnvNames)
  if (!value || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, v]) =>
    /Env$/.test(key) && typeof v === 'string' ? [v] : referencedEnvNames(v),
  )
}

function envValue(workload: K8sObject, name: string): string | undefined {
  const env = (containersOf(workload)[0]?.env as { name: string; value?: string }[] | undefined) ?? []
  return env.find((e) => e.name === name)?.value
}

/**
 * The environment Kubernetes gives the container: literal values, Secret keys (the example
 * Secret's values), and the ConfigMap written where its volume is mounted.
 */
function containerEnv(
  workload: K8sObject & { spec: Yaml },
  secret: { metadata: { name: string }; stringData?: Record<string, string> },
  configMap: { metadata: { name: string }; data?: Record<string, string> },
  work: string,
): Record<string, string> {
  const pod = workload.spec.template.spec
  const [container] = pod.containers
  const env: Record<string, string> = {}
  for (const e of container.env as {
    name: string
    value?: string
    valueFrom?: { secretKeyRef: { name: string; key: string } }
  }[]) {
    if (e.value !== undefined) env[e.name] = e.value
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef
      if (name !== secret.metadata.name || secret.stringData?.[key] === undefined) {
        throw new Error(`${e.name}: no key ${key} in Secret ${name}`)
      }
      env[e.name] = secret.stringData[key]
    } else throw new Error(`${e.name}: unsupported env source`)
  }
  const configPath = env[CONFIG_FILE_ENV]
  if (!configPath) throw new Error('REGENT_CONFIG is not set')
  const mount = container.volumeMounts.find((m: { mountPath: string }) =>
    configPath.startsWith(`${m.mountPath}/`),
  )
  const volume = pod.volumes.find((v: { name: string }) => v.name === mount?.name)
  if (volume?.configMap?.name !== configMap.metadata.name)
    throw new Error(`${configPath} is not from the ConfigMap`)
  const key = configPath.slice(mount.mountPath.length + 1)
  const local = path.join(work, `${workload.metadata.name}-${key}`)
  writeFileSync(local, configMap.data?.[key] ?? '')
  return { ...env, [CONFIG_FILE_ENV]: local }
}
