package crawler

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/topk-charts/topk/crawler/provider"
)

// TaskType is the Asynq type of a crawl.
const TaskType = "crawl:user"

// Queue is the Asynq queue of namespace's crawls: "crawl", or
// "<namespace>.crawl" (tests get a queue of their own).
func Queue(namespace string) string {
	if namespace == "" {
		return "crawl"
	}
	return namespace + ".crawl"
}

// payload is a crawl task's body.
type payload struct {
	User string `json:"user"`
	Slot int64  `json:"slot"` // Unix seconds of the schedule's next_run_at
}

// TaskID names the crawl of user at slot: unique per user and run slot, so
// Asynq refuses a second pending task for the same run while the running
// crawl may already enqueue the next one.
func TaskID(user string, slot time.Time) string {
	return "crawl:" + user + ":" + strconv.FormatInt(slot.Unix(), 10)
}

// slotOf truncates a time to the schedule's resolution (seconds).
func slotOf(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func newTask(user string, slot time.Time, queue string, maxRetry int, timeout time.Duration) (*asynq.Task, []asynq.Option) {
	b, _ := json.Marshal(payload{User: user, Slot: slot.Unix()})
	return asynq.NewTask(TaskType, b), []asynq.Option{
		asynq.TaskID(TaskID(user, slot)),
		asynq.Queue(queue),
		asynq.ProcessAt(slot),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(timeout),
	}
}

func parsePayload(b []byte) (payload, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil || p.User == "" || p.Slot <= 0 {
		return p, fmt.Errorf("bad crawl payload %q: %v", b, err)
	}
	return p, nil
}

// RetryDelay is the backoff of a failed crawl: base·2^(n-1) with ±20 %
// jitter, capped at max; a provider's Retry-After wins when longer.
func RetryDelay(base, max time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		d := base
		for i := 1; i < n && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
		if ra, ok := provider.RetryAfter(err); ok && ra > d {
			d = ra
		}
		return d
	}
}
