/**
 * What the configured owners give the engine's owners: the servable
 * credentials, and the metrics label of each owner.
 *
 * @internal
 */
import type { CredentialFamily } from "../../CredentialFamily.js"
import type { OwnerId as Owner } from "../../OwnerId.js"
import * as TokenMetrics from "../../TokenMetrics.js"
import type { RecordKey } from "../../TokenStore.js"

/**
 * Each configured owner once, and its family's first kind. A set, not a
 * search of the list: 100,000 owners would make that 10^10 steps.
 */
export const servableOf = (families: ReadonlyArray<CredentialFamily>) => {
  const servable: Array<RecordKey> = []
  const seen = new Set<Owner>()
  for (const family of families) {
    for (const owner of family.owners) {
      if (seen.has(owner)) continue
      seen.add(owner)
      servable.push({ appId: owner, kind: family.kinds[0].kind })
    }
  }
  return { apps: Array.from(seen), servable }
}

/**
 * The metrics label of an owner, one string per distinct label: an owner
 * labelled by itself keeps its own id; the authorizers of a component share
 * the component's.
 */
export const labeller = (families: ReadonlyArray<CredentialFamily>): (owner: string) => string => {
  const configuredOwners = new Set(families.flatMap((family) => family.owners)).size
  const labels = new Map<string, string>()
  return (owner) => {
    const label = TokenMetrics.ownerLabel(owner, configuredOwners)
    if (label === owner) return owner
    const interned = labels.get(label)
    if (interned !== undefined) return interned
    labels.set(label, label)
    return label
  }
}
