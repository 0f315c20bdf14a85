import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { InClusterConfig, KubernetesSourceConfig } from '../config-schema.js'

/**
 * How to reach one cluster's API server: from a kubeconfig file and context, or in-cluster from the
 * service account Kubernetes mounts into the pod. Credentials are read from files each time a sync
 * starts (bound service-account tokens rotate), held in memory for that sync only, never logged.
 *
 * Supported kubeconfig user entries: `token`, `tokenFile`, client certificates (files or `-data`),
 * `username`/`password`. `exec` and `auth-provider` plugins run programs or talk to identity
 * providers; Regent refuses them with a clear message rather than half-supporting them.
 */
export interface KubernetesConnection {
  /** The API server's base URL, path prefix included (some proxies serve a cluster under a path). */
  server: URL
  ca?: string
  cert?: string
  key?: string
  insecureSkipTlsVerify: boolean
  tlsServerName?: string
  /** Authorization header value, or undefined for client-certificate auth only. */
  authorization?: string
}

interface KubeconfigFile {
  'current-context'?: string
  clusters?: { name: string; cluster: Record<string, unknown> }[]
  users?: { name: string; user: Record<string, unknown> }[]
  contexts?: { name: string; context: { cluster?: string; user?: string } }[]
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KubeconfigError'
  }
}

export async function resolveConnection(
  source: KubernetesSourceConfig,
  inCluster: InClusterConfig,
): Promise<KubernetesConnection> {
  return source.kubeconfig ? fromKubeconfig(source.kubeconfig, source.context) : fromServiceAccount(inCluster)
}

/** In-cluster: KUBERNETES_SERVICE_HOST/PORT (through config), the mounted token and CA. */
async function fromServiceAccount(inCluster: InClusterConfig): Promise<KubernetesConnection> {
  if (!inCluster.serviceHost)
    throw new KubeconfigError(
      'no kubeconfig given and KUBERNETES_SERVICE_HOST is not set: Regent is not running in a cluster',
    )
  const host = inCluster.serviceHost.includes(':') ? `[${inCluster.serviceHost}]` : inCluster.serviceHost
  const token = (await readFile(inCluster.tokenFile, 'utf8')).trim()
  return {
    server: new URL(`https://${host}:${inCluster.servicePort}`),
    ca: await readFile(inCluster.caFile, 'utf8'),
    insecureSkipTlsVerify: false,
    authorization: `Bearer ${token}`,
  }
}

async function fromKubeconfig(file: string, contextName: string | undefined): Promise<KubernetesConnection> {
  const dir = path.dirname(file)
  const doc = parseYaml(await readFile(file, 'utf8')) as KubeconfigFile | null
  if (!doc || typeof doc !== 'object') throw new KubeconfigError(`${file}: not a kubeconfig`)
  const wanted = contextName ?? doc['current-context']
  if (!wanted) throw new KubeconfigError(`${file}: no context given and no current-context`)
  const context = doc.contexts?.find((c) => c.name === wanted)?.context
  if (!context) throw new KubeconfigError(`${file}: context ${wanted} not found`)
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster
  if (!cluster)
    throw new KubeconfigError(
      `${file}: cluster ${context.cluster ?? '(none)'} of context ${wanted} not found`,
    )
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {}
  if (user.exec || user['auth-provider'])
    throw new KubeconfigError(
      `${file}: user ${context.user} uses an exec or auth-provider plugin, which Regent does not run; use a token, tokenFile or client certificate`,
    )
  if (typeof cluster.server !== 'string')
    throw new KubeconfigError(`${file}: cluster ${context.cluster} has no server`)

  const inline = (dataKey: string, fileKey: string, from: Record<string, unknown>) =>
    typeof from[dataKey] === 'string'
      ? Promise.resolve(Buffer.from(from[dataKey] as string, 'base64').toString('utf8'))
      : typeof from[fileKey] === 'string'
        ? readFile(path.resolve(dir, from[fileKey] as string), 'utf8')
        : Promise.resolve(undefined)

  const [ca, cert, key] = await Promise.all([
    inline('certificate-authority-data', 'certificate-authority', cluster),
    inline('client-certificate-data', 'client-certificate', user),
    inline('client-key-data', 'client-key', user),
  ])
  let authorization: string | undefined
  if (typeof user.token === 'string') authorization = `Bearer ${user.token}`
  else if (typeof user.tokenFile === 'string')
    authorization = `Bearer ${(await readFile(path.resolve(dir, user.tokenFile), 'utf8')).trim()}`
  else if (typeof user.username === 'string' && typeof user.password === 'string')
    authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`

  return {
    server: new URL(cluster.server),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(typeof cluster['tls-server-name'] === 'string' ? { tlsServerName: cluster['tls-server-name'] } : {}),
    ...(authorization ? { authorization } : {}),
  }
}
