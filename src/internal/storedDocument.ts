/**
 * A `StoreDocuments` document as the file and Redis adapters write it:
 * `{"version":n,"body":"…"}`.
 */
import { Schema } from "effect"

const StoredJson = Schema.parseJson(Schema.Struct({ version: Schema.Int, body: Schema.String }))

export const decodeStored = Schema.decodeUnknownOption(StoredJson)
export const encodeStored = Schema.encodeSync(StoredJson)
