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

// LiveGokaMonitor is GokaMonitor of processors that are replaced while the
// service runs (a supervised processor is rebuilt after each restart):
// procs is asked on every request, and the monitor is rebuilt when the set
// it returns changed.
func LiveGokaMonitor(procs func() []*goka.Processor, views []*goka.View) http.Handler {
	var (
		mu   sync.Mutex
		last []*goka.Processor
		h    http.Handler
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps := procs()
		mu.Lock()
		if h == nil || !slices.Equal(ps, last) {
			h, last = GokaMonitor(ps, views), ps
		}
		cur := h
		mu.Unlock()
		cur.ServeHTTP(w, r)
	})
}
