// Preact with htm: components are plain functions returning tagged templates, no build step.
import htm from '../vendor/htm.mjs'
import { h, render } from '../vendor/preact.mjs'

export { useCallback, useEffect, useMemo, useRef, useState } from '../vendor/hooks.mjs'
export { render }
export const html = htm.bind(h)
