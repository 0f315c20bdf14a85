import { randomBytes } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'

/**
 * Secrets the zero-setup default generates once and keeps under REGENT_DATA_DIR (the embedded
 * database password, the development JWT secret). Readable by the owner only.
 */
export async function readOrCreateSecret(file: string, bytes = 24): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const secret = randomBytes(bytes).toString('base64url')
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(
      async (err: NodeJS.ErrnoException) => {
        // Another process created it first: use theirs, so both agree.
        if (err.code !== 'EEXIST') throw err
      },
    )
    await chmod(file, 0o600)
    return (await readFile(file, 'utf8')).trim()
  }
}
