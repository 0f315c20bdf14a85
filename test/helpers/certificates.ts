import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

/**
 * A self-signed certificate and its key, both PEM. Node cannot make an X.509 certificate; openssl
 * can. `subjectAltName` (e.g. `IP:127.0.0.1`) makes it valid for a TLS server at that address.
 */
export async function selfSignedCertificate(
  subject: string,
  subjectAltName?: string,
): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'regent-cert-'))
  try {
    const [keyPath, certPath] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      subject,
      ...(subjectAltName ? ['-addext', `subjectAltName=${subjectAltName}`] : []),
    ])
    return { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8') }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
