/**
 * Packet Identifier allocation for one client session. An id stays reserved from the moment a
 * PUBLISH (QoS > 0), SUBSCRIBE or UNSUBSCRIBE takes it until its flow completes, so two flows never
 * share one [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-2]); ids are non-zero [MQTT-2.2.1-2].
 */
export class PacketIdAllocator {
  #inUse = new Set<number>();
  #next = 1;

  /** Reserves and returns a free id, or undefined when all 65,535 are taken. */
  allocate(): number | undefined {
    if (this.#inUse.size >= 65_535) return undefined;
    for (;;) {
      const id = this.#next;
      this.#next = id === 65_535 ? 1 : id + 1;
      if (!this.#inUse.has(id)) {
        this.#inUse.add(id);
        return id;
      }
    }
  }

  /** Marks an id restored from a store as taken. */
  reserve(id: number): void {
    this.#inUse.add(id);
    // Continue after the highest restored id so fresh ids follow the original order.
    if (id >= this.#next) this.#next = id === 65_535 ? 1 : id + 1;
  }

  release(id: number): void {
    this.#inUse.delete(id);
  }

  has(id: number): boolean {
    return this.#inUse.has(id);
  }

  get size(): number {
    return this.#inUse.size;
  }
}
