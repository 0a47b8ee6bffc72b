package processors

import "testing"

// TestReplayable: a replay sends only letters holding a listen of the
// contract back to the raw topic.
func TestReplayable(t *testing.T) {
	for stage, want := range map[string]bool{"ingest": true, "aggregator": true, "": true,
		StageImport: false, StageFanout: false, StageSitewide: false} {
		if got := replayable(stage); got != want {
			t.Errorf("replayable(%q) = %v, want %v", stage, got, want)
		}
	}
}
