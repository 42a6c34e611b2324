/**
 * The names of p2pchat's gossipsub topics: one per group. Shared by the wire format (which topic a
 * group's frames travel on) and the transport (which topics it accepts from the network).
 *
 * @packageDocumentation
 */

/** Every p2pchat group topic starts with this; by default gossipsub drops any other topic from peers. */
export const GROUP_TOPIC_PREFIX = '/p2pchat/1/group/'

/** Longest topic accepted by {@link isGroupTopic}; bounds what a peer can make us store per topic. */
export const MAX_TOPIC_LENGTH = 256

/** The gossipsub topic of a group. */
export function topicOf(groupId: string): string {
  return `${GROUP_TOPIC_PREFIX}${groupId}`
}

/**
 * Whether `topic` is a p2pchat group topic: {@link GROUP_TOPIC_PREFIX} followed by a non-empty group id,
 * at most {@link MAX_TOPIC_LENGTH} characters in total. This is the default gossipsub topic filter.
 */
export function isGroupTopic(topic: string): boolean {
  return (
    topic.length > GROUP_TOPIC_PREFIX.length &&
    topic.length <= MAX_TOPIC_LENGTH &&
    topic.startsWith(GROUP_TOPIC_PREFIX)
  )
}
