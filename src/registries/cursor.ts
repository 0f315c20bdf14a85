/** Browsing pages by name with the shared opaque cursors. */
export { decodeCursor, encodeCursor } from '../lib/cursor.js'
