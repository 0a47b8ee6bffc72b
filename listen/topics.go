package listen

import "github.com/lovoo/goka"

// Base topic names (DESIGN.md, "Topics").
const (
	rawTopic   = "user.listen.raw"
	validTopic = "user.listen.valid"
	dlqTopic   = "user.listen.dlq"
	// recentTopic is not in DESIGN.md's first table: the aggregator's
	// projection of the recent days for the api's views (issue 10).
	recentTopic = "user.day.recent"
	// storedTopic: notices that a user's older days changed in Cassandra
	// (processors/stored).
	storedTopic = "user.day.stored"
	// countsTopic and sitewideRecentTopic: the sitewide charts (issue
	// 15): the fan-out's Counts to the sitewide group, and the group's
	// values of the recent days for the api's sitewide view.
	countsTopic         = "sitewide.counts"
	sitewideRecentTopic = "sitewide.day.recent"
)

// Topics are the listen streams of one deployment.
type Topics struct {
	// Raw is where listens arrive, from the crawler or any producer, with
	// any key or none. Its partition count is free.
	Raw goka.Stream
	// Valid holds validated, normalized listens keyed user_id|day and
	// partitioned by Goka's hasher over N partitions (fixed forever).
	Valid goka.Stream
	// DLQ holds every record the pipeline could not accept, with its
	// original bytes and a reason header.
	DLQ goka.Stream
	// Recent holds the aggregator's user-day values of the recent days
	// only (key user_id|day, same partitions as Valid), compacted and
	// deleted by age: the api's views read it, so their time to ready
	// follows the days they serve, not all history in the table.
	Recent goka.Stream
	// Stored holds notices that a user's days before yesterday changed in
	// Cassandra, keyed by user (the flusher and the raw writer publish
	// them after their writes; the api drops its cached answers of that
	// user when it reads one). Deleted by age.
	Stored goka.Stream
	// Counts holds the fan-out's sitewide Counts, keyed
	// entity|item|day|bucket and partitioned by sitewide.Hasher.
	Counts goka.Stream
	// SitewideRecent holds the sitewide group's values of the recent
	// days (same keys and partitions as Counts), compacted and deleted
	// by age, for the api's sitewide view.
	SitewideRecent goka.Stream
}

// NewTopics names the listen topics under namespace: the empty namespace
// gives the production names; tests pass a random one so their topics never
// meet those of `make run`.
func NewTopics(namespace string) Topics {
	return Topics{
		Raw:    goka.Stream(Namespaced(namespace, rawTopic)),
		Valid:  goka.Stream(Namespaced(namespace, validTopic)),
		DLQ:    goka.Stream(Namespaced(namespace, dlqTopic)),
		Recent: goka.Stream(Namespaced(namespace, recentTopic)),
		Stored: goka.Stream(Namespaced(namespace, storedTopic)),

		Counts:         goka.Stream(Namespaced(namespace, countsTopic)),
		SitewideRecent: goka.Stream(Namespaced(namespace, sitewideRecentTopic)),
	}
}

// Namespaced prefixes a topic or group name with namespace and a dot.
func Namespaced(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "." + name
}
