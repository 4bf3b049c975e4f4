/**
 * A small typed event emitter. The client runs in browsers too, so it cannot use node:events.
 * Unlike Node's emitter, emitting 'error' without a listener does not throw: errors also reach
 * the caller through rejected promises.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap<Events> = { [K in keyof Events]: (...args: any[]) => void };

export class Emitter<Events extends EventMap<Events>> {
  #listeners = new Map<keyof Events, Array<Events[keyof Events]>>();

  on<K extends keyof Events>(event: K, listener: Events[K]): this {
    const list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, [listener]);
    else list.push(listener);
    return this;
  }

  once<K extends keyof Events>(event: K, listener: Events[K]): this {
    const wrapper = ((...args: Parameters<Events[K]>) => {
      this.off(event, wrapper);
      listener(...args);
    }) as Events[K];
    return this.on(event, wrapper);
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    const i = list.indexOf(listener);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const list = this.#listeners.get(event);
    if (list === undefined) return;
    // Copy: a listener may remove itself (once) while we iterate.
    for (const listener of [...list]) listener(...args);
  }
}
