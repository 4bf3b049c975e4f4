export {
  SubscriptionTree,
  type SubscriptionEntry,
  type SubscriptionInfo,
  type MatchedClient,
  type MatchResult,
  type ShareGroup,
  type SubscriptionTreeOptions,
} from './subscription-tree.js';
export { MemoryRetainedStore, type RetainedMessage, type RetainedStore } from './retained-store.js';
