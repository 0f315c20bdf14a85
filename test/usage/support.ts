import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { authHeaders } from '../helper.js'
import { type FakeKubernetes, startFakeKubernetes } from '../helpers/fake-kubernetes.js'

export const viewer = authHeaders({ sub: 'vic', roles: ['viewer'] })
export const admin = authHeaders({ sub: 'root', roles: ['admin'] })

/** A fake API server and a folder for its kubeconfig, both gone at teardown. */
export async function withFakeCluster(
  t: Test,
): Promise<{ cluster: FakeKubernetes; kubeconfig: string; dir: string }> {
  const cluster = await startFakeKubernetes()
  const dir = mkdtempSync(path.join(tmpdir(), 'regent-kube-'))
  t.teardown(async () => {
    await cluster.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { cluster, kubeconfig: cluster.kubeconfig(dir), dir }
}

/** A kubernetes usage source reading `kubeconfig`, small pages so that lists take several. */
export function kubeSource(name: string, kubeconfig: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    kind: 'kubernetes',
    refreshIntervalMs: '10m',
    staleAfterMs: '30m',
    kubernetes: { kubeconfig, pageSize: 2, timeoutMs: 5000 },
    ...extra,
  }
}

export const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`
