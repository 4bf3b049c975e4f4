import { parseSharedSubscription, topicMatches } from '../protocol/topic.js';
import type { Message } from './types.js';

/**
 * Messages as an async iterator. Messages are buffered while the consumer is busy (unbounded: a
 * consumer that falls behind for good should use the 'message' event and apply its own policy).
 */
export class MessageStream implements AsyncIterableIterator<Message> {
  readonly #filter: string | undefined;
  readonly #onReturn: (stream: MessageStream) => void;
  #buffer: Message[] = [];
  #head = 0;
  #waiter: ((result: IteratorResult<Message>) => void) | undefined;
  #done = false;

  constructor(filter: string | undefined, onReturn: (stream: MessageStream) => void) {
    if (filter !== undefined) {
      // A shared subscription delivers messages under their own topic: match the inner filter.
      const shared = parseSharedSubscription(filter);
      this.#filter = shared !== undefined && 'filter' in shared ? shared.filter : filter;
    } else {
      this.#filter = undefined;
    }
    this.#onReturn = onReturn;
  }

  /** @internal called by the client for each received message. */
  push(message: Message): void {
    if (this.#done) return;
    if (this.#filter !== undefined && !topicMatches(this.#filter, message.topic)) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ value: message, done: false });
    } else {
      this.#buffer.push(message);
    }
  }

  /** @internal ends the iteration once the buffered messages are consumed. */
  finish(): void {
    this.#done = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.#head < this.#buffer.length) {
      const value = this.#buffer[this.#head++] as Message;
      if (this.#head === this.#buffer.length) {
        this.#buffer = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<Message>> {
    this.#buffer = [];
    this.#head = 0;
    this.finish();
    this.#onReturn(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}
