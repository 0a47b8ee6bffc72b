package ops

import (
	"net/http"
	"slices"
	"sync"

	"github.com/gorilla/mux"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/web/index"
	"github.com/lovoo/goka/web/monitor"
)

// GokaPrefix is where the Goka monitor is served on ops ports and the api.
const GokaPrefix = "/goka"

// GokaMonitor serves Goka's monitor web UI of the given processors and
// views under GokaPrefix: partitions, recovery state, lag and throughput.
func GokaMonitor(procs []*goka.Processor, views []*goka.View) http.Handler {
	root := mux.NewRouter()
	mon := monitor.NewServer(GokaPrefix+"/monitor", root)
	for _, p := range procs {
		mon.AttachProcessor(p)
	}
	for _, v := range views {
		mon.AttachView(v)
	}
	idx := index.NewServer(GokaPrefix, root)
	idx.AddComponent(mon, "Monitor")
	root.Handle(GokaPrefix, http.RedirectHandler(GokaPrefix+"/", http.StatusFound))
	return root
}

// LiveGokaMonitor is GokaMonitor of processors and views that are replaced
// while the service runs (a supervised processor is rebuilt after each
// restart, the api's view after Kafka came back): procs and views (either
// may be nil) are asked on every request, and the monitor is rebuilt when
// the set they return changed. Nil entries are left out.
func LiveGokaMonitor(procs func() []*goka.Processor, views func() []*goka.View) http.Handler {
	var (
		mu    sync.Mutex
		lastP []*goka.Processor
		lastV []*goka.View
		h     http.Handler
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ps []*goka.Processor
		var vs []*goka.View
		if procs != nil {
			ps = slices.DeleteFunc(procs(), func(p *goka.Processor) bool { return p == nil })
		}
		if views != nil {
			vs = slices.DeleteFunc(views(), func(v *goka.View) bool { return v == nil })
		}
		mu.Lock()
		if h == nil || !slices.Equal(ps, lastP) || !slices.Equal(vs, lastV) {
			h, lastP, lastV = GokaMonitor(ps, vs), ps, vs
		}
		cur := h
		mu.Unlock()
		cur.ServeHTTP(w, r)
	})
}
