/** The value under `key`, made and kept on first use (per-app and per-corp counters). */
export const getOrMake = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  const held = map.get(key)
  if (held !== undefined) return held
  const made = make()
  map.set(key, made)
  return made
}
