// Package stored tells the api when Cassandra holds a change to a user's
// older days, so the answers it cached from Cassandra are not used again.
//
// The api caches what it reads from Cassandra for TOPK_CACHE_TTL (in
// process and in Redis). A change to a day inside the views' window shows
// at once (the view serves those days); a change to an older day — a
// late or imported listen, a deletion — reaches Cassandra through the
// flusher and the raw writer only. After each write that touched a day
// before yesterday (UTC), they publish a notice to the stored topic
// (listen.Topics.Stored): key the user, value the days ("2006-01-02,…"),
// produced after the Cassandra write and before the input's offsets are
// marked, so a crash between the two sends it again with the redelivered
// batch. Every api reads the notices (Generations) and puts the offset of
// a user's latest notice in the keys of that user's cached answers: an
// answer cached before the write is never found again once the notice is
// read. Notices of one user share a partition (keyed by user), so the
// offset only grows; the topic keeps an hour of them (an answer is
// cached at most TOPK_CACHE_TTL).
package stored
