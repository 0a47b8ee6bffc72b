package charts_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/charts/chartstest"
)

// slowStore counts the Items reads running at once.
type slowStore struct {
	charts.Store
	now, most atomic.Int32
}

func (s *slowStore) Items(ctx context.Context, p topk.Period, user string, e topk.Entity) ([]topk.Item, error) {
	n := s.now.Add(1)
	defer s.now.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	time.Sleep(2 * time.Millisecond)
	return s.Store.Items(ctx, p, user, e)
}

// MaxReads bounds the store reads of the whole service at once, however
// many fills run (each reads up to 16 partitions at a time).
func TestMaxReadsBoundsTheService(t *testing.T) {
	_, data := chartstest.Seeded(1)
	st := &slowStore{Store: chartstest.NewStore(data)}
	svc, err := charts.New(charts.Config{Store: st, MaxReads: 3, Now: func() time.Time { return chartstest.Now }, Registerer: prometheus.NewRegistry()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	var wg sync.WaitGroup
	for _, e := range []topk.Entity{topk.Tracks, topk.Artists, topk.Albums} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Top(context.Background(), charts.TopQuery{User: "alice", Entity: e, Range: custom("2024-02-10", "2026-02-20"), K: 5}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := st.most.Load(); m != 3 {
		t.Errorf("%d partitions read at once, want 3 (MaxReads)", m)
	}
}
