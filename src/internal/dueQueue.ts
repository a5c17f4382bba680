/**
 * A binary min-heap of items by due time, the items carrying their own due
 * time and position: moving an item (a refresh rescheduled) is O(log n) with
 * no search and no allocation, and an item is in the queue at most once.
 * The engine's one scheduler keeps every credential's next refresh here
 * instead of a sleeping fiber per credential.
 *
 * @internal
 */

/** @internal */
export interface Entry {
  /** Epoch millis; meaningful while queued. */
  due: number
  /** Position in the heap, -1 when not queued. Owned by the queue. */
  slot: number
}

/** @internal */
export interface DueQueue<A extends Entry> {
  readonly size: () => number
  /** The item due first, if any, left in place. */
  readonly first: () => A | undefined
  /** Queues `item` at `due`, or moves it there if queued. */
  readonly set: (item: A, due: number) => void
  readonly remove: (item: A) => void
  readonly pop: () => A | undefined
}

/** @internal */
export const make = <A extends Entry>(): DueQueue<A> => {
  const heap: Array<A> = []

  const place = (item: A, slot: number) => {
    heap[slot] = item
    item.slot = slot
  }

  const up = (start: number) => {
    const item = heap[start]!
    let slot = start
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (heap[parent]!.due <= item.due) break
      place(heap[parent]!, slot)
      slot = parent
    }
    place(item, slot)
  }

  const down = (start: number) => {
    const item = heap[start]!
    let slot = start
    for (;;) {
      const left = 2 * slot + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && heap[right]!.due < heap[left]!.due ? right : left
      if (heap[child]!.due >= item.due) break
      place(heap[child]!, slot)
      slot = child
    }
    place(item, slot)
  }

  const removeAt = (slot: number) => {
    const item = heap[slot]!
    const last = heap.pop()!
    item.slot = -1
    if (last === item) return
    place(last, slot)
    up(slot)
    down(last.slot)
  }

  return {
    size: () => heap.length,
    first: () => heap[0],
    set: (item, due) => {
      item.due = due
      if (item.slot < 0) {
        heap.push(item)
        up(heap.length - 1)
        return
      }
      up(item.slot)
      down(item.slot)
    },
    remove: (item) => {
      if (item.slot >= 0) removeAt(item.slot)
    },
    pop: () => {
      const first = heap[0]
      if (first !== undefined) removeAt(0)
      return first
    }
  }
}
