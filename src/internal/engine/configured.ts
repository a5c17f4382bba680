/**
 * What the configured families give the engine's owners: the declared
 * kinds, the servable credentials, and the metrics label of each owner.
 *
 * @internal
 */
import type { CredentialFamily, CredentialKindSpec } from "../../CredentialFamily.js"
import type { OwnerId as Owner } from "../../OwnerId.js"
import type { CredentialKind } from "../../Token.js"
import * as TokenMetrics from "../../TokenMetrics.js"
import type { RecordKey } from "../../TokenStore.js"

/** The family and spec a kind is declared by. */
export interface Declared {
  readonly family: CredentialFamily
  readonly spec: CredentialKindSpec
}

/** Each kind's declaration, or the first kind two families declare. */
export const declaredKinds = (
  families: ReadonlyArray<CredentialFamily>
): Map<CredentialKind, Declared> | { readonly twice: CredentialKind } => {
  const kinds = new Map<CredentialKind, Declared>()
  for (const family of families) {
    for (const spec of family.kinds) {
      if (kinds.has(spec.kind)) return { twice: spec.kind }
      kinds.set(spec.kind, { family, spec })
    }
  }
  return kinds
}

/** A kind that declares another its input, and whether it takes it from its own owner. */
export interface Dependent {
  readonly kind: CredentialKind
  readonly sameOwner: boolean
}

/** For each kind, the kinds declaring it an input. */
export const dependents = (
  kinds: ReadonlyMap<CredentialKind, Declared>
): ReadonlyMap<CredentialKind, ReadonlyArray<Dependent>> => {
  const found = new Map<CredentialKind, Array<Dependent>>()
  for (const { spec } of kinds.values()) {
    for (const input of spec.inputs ?? []) {
      const list = found.get(input.kind) ?? []
      list.push({ kind: spec.kind, sameOwner: input.ownerOf === undefined })
      found.set(input.kind, list)
    }
  }
  return found
}

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
